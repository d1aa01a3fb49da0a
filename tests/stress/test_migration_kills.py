"""The re-key workflow killed at random points, then run again until it completes.

Each kill stops the migration function dead (no cleanup runs) at a random S3 or KMS call of a
step, drawn from a seeded RNG over the number of calls a whole migration makes. Every org is
killed twice (a draw past the calls a resume still makes lets it finish) and then run without
faults; orgs are added until the number of kills is reached. After every kill the org's data
must still read back (SHA-256) and the shared key must be untouched while a neighbour uses it;
at the end every object is under the org's new key, verified by SHA-256, and rewritten exactly
once (two object versions: the original and one rewrite).
"""

import hashlib
import io
import random
from typing import Any

from tests.stress.conftest import CANARY, SIZES
from tests.stress.faults import CrashingRuntime, FaultInjector, faulty_sessions
from tests.workflow.conftest import migrate, workflow  # noqa: F401 - the fixture

SEED = 20261208
KILLS_PER_ORG = 2


def seed_objects(platform: Any, org: str, count: int) -> dict[str, str]:
    """``count`` objects of varied sizes; returns name -> SHA-256 of the plaintext."""
    rng = random.Random(f"{SEED}-{org}")
    digests = {}
    for i in range(count):
        data = CANARY + rng.randbytes(rng.choice([10, 3000, 70_000, 200_000]))
        platform.store.put(org, "document", f"file-{i:03d}.bin", io.BytesIO(data), len(data))
        digests[f"file-{i:03d}.bin"] = hashlib.sha256(data).hexdigest()
    return digests


def read_digests(platform: Any, org: str, names: list[str]) -> dict[str, str]:
    platform.envelope.flush(org)
    found = {}
    for name in names:
        out = io.BytesIO()
        platform.store.get(org, name, out)
        found[name] = hashlib.sha256(out.getvalue()).hexdigest()
    return found


def versions(stack: Any, bucket: str, key: str) -> int:
    listed = stack.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return sum(1 for v in listed.get("Versions", []) if v["Key"] == key)


def test_migrations_killed_at_random_points_resume_and_rewrite_each_object_once(
    workflow: Any,  # noqa: F811
    platform: Any,
    create_org: Any,
    figures: Any,
) -> None:
    # GIVEN shared-mode orgs with objects, a neighbour on the shared key, and the calls one whole
    # migration makes (the range kill points are drawn from)
    rng = random.Random(SEED)
    shared = workflow.outputs["SharedPlatformKeyArn"]
    kms, bucket = workflow.client("kms"), platform.settings.data_bucket
    neighbour = create_org(keyMode="shared")
    platform.store.put(neighbour, "document", "n.txt", io.BytesIO(CANARY))
    injector = FaultInjector(SEED, 0.0, ())
    function = workflow.outputs["MigrationFunctionName"]
    orgs: list[str] = []
    digests: dict[str, dict[str, str]] = {}
    reference = create_org(keyMode="shared")
    seed_objects(platform, reference, SIZES.migration_objects)

    kill_points: list[str] = []
    survived_kill = 0
    readable_after_kill = 0
    with faulty_sessions(injector), CrashingRuntime(workflow.runtime, injector) as runtime:
        workflow.runtime.configure(function)  # a cold start: its clients carry the kill switch
        injector.kill_candidates = 0
        ref = migrate(workflow, reference)
        assert ref["status"] == "SUCCEEDED", (
            ref.get("cause"),
            ref.get("error"),
            ref.get("result"),
            platform.checkpoints.get(reference),
            runtime.crashes,
        )
        calls_per_migration = injector.kill_candidates

        # WHEN each org's migration is killed twice at random calls, then run to the end
        while len(kill_points) < SIZES.migration_kills:
            org = create_org(keyMode="shared")
            orgs.append(org)
            digests[org] = seed_objects(platform, org, SIZES.migration_objects)
            result: dict[str, Any] = {}
            for _ in range(KILLS_PER_ORG):
                injector.kill_at = rng.randint(1, calls_per_migration)
                result = migrate(workflow, org)
                injector.kill_at = None
                if not injector.killed_at:
                    survived_kill += 1  # the draw fell past the calls this resume needed
                    break
                kill_points.append(injector.killed_at)
                injector.killed_at = ""
                assert result["status"] == "FAILED"
                assert kms.describe_key(KeyId=shared)["KeyMetadata"]["KeyState"] == "Enabled"
                assert read_digests(platform, org, list(digests[org])) == digests[org]
                readable_after_kill += 1
            if result.get("status") != "SUCCEEDED":
                result = migrate(workflow, org)
            assert result["status"] == "SUCCEEDED", result.get("cause")
    workflow.runtime.configure(function)

    # THEN every object is under the org's own key, intact, and was rewritten once
    rewritten_twice, not_moved, org_keys_made = [], [], 0
    s3 = workflow.client("s3")
    for org in orgs:
        record = platform.registry.get(org)
        assert record.key_mode == "dedicated" and record.decrypt_key_arns == (
            record.encrypt_key_arn,
        )
        assert read_digests(platform, org, list(digests[org])) == digests[org]
        for name in digests[org]:
            key = f"orgs/{org}/{name}"
            if versions(workflow, bucket, key) != 2:
                rewritten_twice.append(key)
            head = s3.head_object(Bucket=bucket, Key=key)
            if head["Metadata"]["orgkms-key-arn"] != record.encrypt_key_arn:
                not_moved.append(key)
        org_keys_made += len(tagged_keys(workflow, org))
    out = io.BytesIO()
    platform.envelope.flush(neighbour)
    platform.store.get(neighbour, "n.txt", out)
    figures.counts.update(
        orgs=len(orgs),
        objects=sum(len(d) for d in digests.values()),
        calls_per_migration=calls_per_migration,
        kills=len(kill_points),
        kill_draws_past_the_end=survived_kill,
        readable_after_every_kill=readable_after_kill,
        sha256_verified=sum(len(d) for d in digests.values()),
        rewritten_more_than_once=len(rewritten_twice),
        not_moved=len(not_moved),
        org_keys_made=org_keys_made,
        unused_target_keys=org_keys_made - len(orgs),
        function_crashes=len(runtime.crashes),
    )
    print("\nkilled at:", sorted(kill_points))
    assert kill_points, "no kill point was reached"
    assert rewritten_twice == [] and not_moved == []
    # A kill inside "prepare" between CreateKey and the checkpoint's write of the target used to
    # leave that key unused (the next execution made another); the claim is now carried over.
    assert org_keys_made == len(orgs)
    assert kms.describe_key(KeyId=shared)["KeyMetadata"]["KeyState"] == "Enabled"
    assert out.getvalue() == CANARY


def tagged_keys(stack: Any, org: str) -> list[str]:
    kms = stack.client("kms")
    found = []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if {"TagKey": "orgkms:organization-id", "TagValue": org} in tags:
                found.append(key["KeyArn"])
    return found
