"""Moving an organization off the shared key (or any old key) with zero downtime."""

import io
import json
import threading
import time
import uuid
from typing import Any

import pytest

from orgkms.envelope import OrgEnvelope
from tests.workflow.conftest import MULTIPART_THRESHOLD, PAGE_SIZE, migrate

DATA = {f"doc-{i}.txt": (b"record %d\n" % i) * (50 + i) for i in range(7)}


def seed(platform: Any, stack: Any, org: str) -> dict[str, bytes]:
    """ESDK objects (one with tags) and a plain SSE-KMS object above the multipart threshold."""
    for name, data in DATA.items():
        platform.store.put(org, "document", name, io.BytesIO(data), len(data))
    s3, bucket = stack.client("s3"), platform.settings.data_bucket
    s3.put_object_tagging(
        Bucket=bucket,
        Key=f"orgs/{org}/doc-0.txt",
        Tagging={"TagSet": [{"Key": "retention", "Value": "7y"}]},
    )
    big = bytes(range(256)) * ((MULTIPART_THRESHOLD + 1024 * 1024) // 256)
    s3.put_object(
        Bucket=bucket,
        Key=f"orgs/{org}/export.bin",
        Body=big,
        ContentType="application/x-export",
        Metadata={"owner": "finance"},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=platform.registry.get(org).encrypt_key_arn,
        Tagging="class=confidential",
    )
    return {**DATA, "export.bin": big}


def versions(stack: Any, bucket: str, key: str) -> int:
    listed = stack.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return sum(1 for v in listed.get("Versions", []) if v["Key"] == key)


def read_all(platform: Any, org: str, names: list[str]) -> dict[str, bytes]:
    found = {}
    for name in names:
        out = io.BytesIO()
        platform.store.get(org, name, out)
        found[name] = out.getvalue()
    return found


def test_shared_org_moves_to_its_own_key_with_everything_kept(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org, neighbour = create_org(keyMode="shared"), create_org(keyMode="shared")
    shared = workflow.outputs["SharedPlatformKeyArn"]
    contents = seed(platform, workflow, org)
    bucket = platform.settings.data_bucket

    execution = migrate(workflow, org)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    record = platform.registry.get(org)
    assert record.key_mode == "dedicated" and record.decrypt_key_arns == (record.encrypt_key_arn,)
    assert record.encrypt_key_arn != shared
    checkpoint = platform.checkpoints.get(org)
    assert (checkpoint.status, checkpoint.done, checkpoint.failed) == ("COMPLETED", 8, 0)
    assert checkpoint.pages == -(-8 // PAGE_SIZE)
    s3 = workflow.client("s3")
    for name in DATA:
        head = s3.head_object(Bucket=bucket, Key=f"orgs/{org}/{name}")
        assert head["Metadata"]["orgkms-key-arn"] == record.encrypt_key_arn
        assert head["ContentType"] == "application/vnd.aws-encryption-sdk"
    export = s3.head_object(Bucket=bucket, Key=f"orgs/{org}/export.bin")
    assert export["SSEKMSKeyId"] == record.encrypt_key_arn
    assert (export["ContentType"], export["Metadata"]) == (
        "application/x-export",
        {"owner": "finance"},
    )
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"orgs/{org}/export.bin")["TagSet"]
    assert tags == [{"Key": "class", "Value": "confidential"}]
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"orgs/{org}/doc-0.txt")["TagSet"]
    assert tags == [{"Key": "retention", "Value": "7y"}]
    platform.envelope.flush(org)
    assert read_all(platform, org, list(DATA)) == DATA
    export_body = s3.get_object(Bucket=bucket, Key=f"orgs/{org}/export.bin")["Body"].read()
    assert export_body == contents["export.bin"]
    # The shared key is untouched while another org still uses it.
    assert workflow.client("kms").describe_key(KeyId=shared)["KeyMetadata"]["KeyState"] == "Enabled"
    assert platform.registry.get(neighbour).encrypt_key_arn == shared
    assert checkpoint.retired[0]["action"] == "kept"


def test_a_rerun_after_completion_is_refused_and_rewrites_nothing(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(keyMode="shared")
    seed(platform, workflow, org)
    assert migrate(workflow, org)["status"] == "SUCCEEDED"
    bucket = platform.settings.data_bucket
    counts = {n: versions(workflow, bucket, f"orgs/{org}/{n}") for n in DATA}
    target = platform.registry.get(org).encrypt_key_arn

    again = migrate(workflow, org, targetKeyArn=target)

    assert again["status"] == "FAILED"
    assert platform.checkpoints.get(org).status == "COMPLETED"  # the first run's record stays
    assert {n: versions(workflow, bucket, f"orgs/{org}/{n}") for n in DATA} == counts


def test_a_crash_mid_way_then_a_rerun_rewrites_nothing_twice(
    workflow: Any, platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgkms.migration import MigrationService

    org = create_org(keyMode="shared")
    seed(platform, workflow, org)
    bucket = platform.settings.data_bucket
    original = MigrationService.reencrypt_page
    calls = {"n": 0}

    def crash_on_second_page(self: Any, state: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the function died mid-way")
        return original(self, state)

    monkeypatch.setattr(MigrationService, "reencrypt_page", crash_on_second_page)
    first = migrate(workflow, org)
    assert first["status"] == "FAILED"
    assert platform.checkpoints.get(org).status == "FAILED"
    platform.envelope.flush(org)
    assert read_all(platform, org, list(DATA)) == DATA  # readable under both keys meanwhile
    monkeypatch.setattr(MigrationService, "reencrypt_page", original)

    second = migrate(workflow, org)

    assert second["status"] == "SUCCEEDED", second.get("cause")
    checkpoint = platform.checkpoints.get(org)
    assert checkpoint.skipped == PAGE_SIZE  # the first page was already done
    for name in DATA:
        assert versions(workflow, bucket, f"orgs/{org}/{name}") == 2  # original + one rewrite


def test_validation_failure_blocks_the_switch_and_keeps_the_org_readable(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org, other = create_org(), create_org()
    seed(platform, workflow, org)
    old_key = platform.registry.get(org).encrypt_key_arn
    stray = platform.store.put(other, "document", "stray.txt", io.BytesIO(b"not yours"))
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    s3.copy_object(
        Bucket=bucket,
        Key=f"orgs/{org}/stray.txt",
        CopySource={"Bucket": bucket, "Key": stray.s3_key},
    )
    target = workflow.client("kms").create_key()["KeyMetadata"]["Arn"]

    execution = migrate(workflow, org, targetKeyArn=target)

    assert execution["status"] == "FAILED"
    checkpoint = platform.checkpoints.get(org)
    assert checkpoint.status == "FAILED" and "stray.txt" in " ".join(checkpoint.failures)
    record = platform.registry.get(org)
    assert old_key in record.decrypt_key_arns and target in record.decrypt_key_arns
    kms = workflow.client("kms")
    assert kms.describe_key(KeyId=old_key)["KeyMetadata"]["KeyState"] == "Enabled"
    platform.envelope.flush(org)
    assert read_all(platform, org, list(DATA)) == DATA


def test_an_org_owned_old_key_is_scheduled_for_deletion_after_validation(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    seed(platform, workflow, org)
    old_key = platform.registry.get(org).encrypt_key_arn
    target = workflow.client("kms").create_key()["KeyMetadata"]["Arn"]

    execution = migrate(
        workflow, org, targetKeyArn=target, deletionWindowDays=7, noncurrentVersions="delete"
    )

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    metadata = workflow.client("kms").describe_key(KeyId=old_key)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    retired = platform.checkpoints.get(org).retired
    assert retired == [
        {
            "keyArn": old_key,
            "action": "scheduled-deletion",
            "deletionDate": retired[0]["deletionDate"],
        }
    ]
    platform.envelope.flush(org)
    assert read_all(platform, org, list(DATA)) == DATA


def test_writers_and_readers_never_fail_during_the_migration(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    from dataclasses import replace

    org = create_org(keyMode="shared")
    seed(platform, workflow, org)
    policy = replace(platform.settings.cache, max_age_seconds=0.2)
    envelope = OrgEnvelope(platform.lookup, policy)
    from orgkms.store import OrgStore

    store = OrgStore(envelope, workflow.client("s3"), platform.settings.data_bucket)
    errors: list[str] = []
    written: dict[str, bytes] = {}
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set() and i < 40:  # a steady writer, slower than the migration
            stop.wait(0.05)
            try:
                name = f"live-{i}.txt"
                store.put(org, "document", name, io.BytesIO(b"live %d" % i))
                written[name] = b"live %d" % i
                out = io.BytesIO()
                store.get(org, f"doc-{i % len(DATA)}.txt", out)
                if out.getvalue() != DATA[f"doc-{i % len(DATA)}.txt"]:
                    errors.append("wrong content")
            except Exception as err:
                errors.append(f"{type(err).__name__}: {err}")
            i += 1

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        execution = migrate(workflow, org, cacheDrainSeconds=1)
    finally:
        stop.set()
        worker.join()

    assert errors == []
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    platform.envelope.flush(org)
    assert read_all(platform, org, list(written)) == written


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"organizationId": "nobody-at-all"}, "not registered"),
        ({"deletionWindowDays": 3}, "deletionWindowDays"),
        ({"targetKeyArn": "alias/someone-else"}, "targetKeyArn"),
    ],
)
def test_bad_requests_are_refused_before_any_data_is_touched(
    workflow: Any, platform: Any, create_org: Any, detail: dict[str, Any], reason: str
) -> None:
    org = create_org(keyMode="shared")
    seed(platform, workflow, org)
    bucket = platform.settings.data_bucket
    request = {"organizationId": org, **detail}
    if request["organizationId"] == "nobody-at-all":
        org = "nobody-at-all"
    sfn = workflow.client("stepfunctions")
    machine = workflow.outputs["MigrationStateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=machine,
        name=f"bad-request-{uuid.uuid4().hex[:8]}",
        input=json.dumps({**request, "cacheDrainSeconds": 0}),
    )
    for _ in range(200):
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)

    assert described["status"] == "FAILED"
    if org != "nobody-at-all":
        assert platform.registry.get(org).key_mode == "shared"
        assert versions(workflow, bucket, f"orgs/{org}/doc-1.txt") == 1
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    assert reason in str(history)


def test_a_disabled_target_key_is_refused(workflow: Any, platform: Any, create_org: Any) -> None:
    org = create_org()
    kms = workflow.client("kms")
    target = kms.create_key()["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=target)

    execution = migrate(workflow, org, targetKeyArn=target)

    assert execution["status"] == "FAILED"
    assert "Disabled" in platform.checkpoints.get(org).reason


def test_a_writer_racing_a_rewrite_keeps_its_version(
    workflow: Any, platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgkms.migration import MigrationService

    org = create_org(keyMode="shared")
    platform.store.put(org, "document", "hot.txt", io.BytesIO(b"old content"))
    original = MigrationService._upload
    raced = {"done": False}

    def writer_gets_in_first(self: Any, key: str, reader: Any, *args: Any) -> Any:
        if key.endswith("hot.txt") and not raced["done"]:
            raced["done"] = True
            platform.envelope.flush(org)  # the writer sees the dual phase: writes under target
            platform.store.put(org, "document", "hot.txt", io.BytesIO(b"the writer's update"))
        return original(self, key, reader, *args)

    monkeypatch.setattr(MigrationService, "_upload", writer_gets_in_first)

    execution = migrate(workflow, org)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert raced["done"]
    platform.envelope.flush(org)
    assert read_all(platform, org, ["hot.txt"]) == {"hot.txt": b"the writer's update"}
    assert platform.checkpoints.get(org).skipped == 1
