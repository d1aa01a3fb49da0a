"""``orgkms demo``: the control plane plays out on the embedded stack, step by step."""

import contextlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from orgkms import demo_keys
from orgkms.errors import DecryptionRefused
from orgkms.models import control_plane_entry
from orgkms.report import blast_radius, inventory

OWNER = "arn:aws:iam::123456789012:role/acme-security-admin"
DEMO_CACHE_SECONDS = "1"
ORGS: list[dict[str, Any]] = [
    {"organizationId": "acme", "ownerPrincipalArn": OWNER},
    {"organizationId": "globex", "region": "eu-west-1"},
    {"organizationId": "initech", "keyMode": "shared"},
    {"organizationId": "hooli", "keyMode": "shared"},
]
DEFAULT_FILES = [
    "README.md",
    "template.yaml",
    "pyproject.toml",
    "layers/orgkms/envelope.py",
    "layers/orgkms/keys.py",
    "Makefile",
]


def run_demo(data: Path | None, stack_name: str) -> int:
    from orgkms.local import EmbeddedStack

    say("orgkms demo: per-organization KMS keys, on template.yaml deployed inside moto\n")
    started = time.monotonic()
    # Data keys stay cached 1 s here (60 s by default), so a revocation bites within a second
    # and the re-key workflow's cache drain takes a second.
    os.environ["ORGKMS_CACHE_MAX_AGE_SECONDS"] = DEMO_CACHE_SECONDS
    quiet = {
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "ORGKMS_CACHE_MAX_AGE_SECONDS": DEMO_CACHE_SECONDS,
    }
    with EmbeddedStack(stack_name, handler_env=quiet) as stack:
        say(
            f"1. Deployed {stack.root / 'template.yaml'} in {time.monotonic() - started:.1f} s: "
            f"bus {stack.outputs['ControlPlaneBusName']}, shared key "
            f"{short(stack.outputs['SharedPlatformKeyArn'])}"
        )
        results = _results_queue(stack)
        _create_orgs(stack, results)
        platform = stack.platform()
        files = _files(data or stack.root, data is None)
        objects = _store(platform, files)
        _isolation(platform, objects)
        _tables(platform)
        _migrate(stack, platform, "initech")
        _tables(platform, heading="7. After the migration")
        say("\n8. Keys under the customer's control, and the response to a leaked key:")
        key = demo_keys.customer_brings_its_key(stack, platform, results, "acme")
        demo_keys.customer_revokes_and_restores(stack, platform, results, "acme", key)
        demo_keys.org_key_compromised(stack, platform, results, "globex")
        demo_keys.rotation_reported(stack, platform, results, ["globex", "acme", "hooli"])
    say("\nDone. Next: `make test`, or `orgkms local serve` and point boto3 or the AWS CLI at it.")
    return 0


def _create_orgs(stack: Any, results: str) -> None:
    say("\n2. The control plane sends org-created events (and some it should not):")
    entries = [_event(detail) for detail in ORGS]
    entries += [_event(ORGS[0]), _event(ORGS[0])]
    entries.append(_event({"organizationId": "../etc/passwd"}))
    for detail in ORGS:
        say(f"   org-created {json.dumps(detail)}")
    say("   org-created for acme twice more (duplicate deliveries)")
    say('   org-created {"organizationId": "../etc/passwd"} (invalid)')
    stack.put_events(entries)
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):
        batches = stack.deliver()
    say(f"   -> delivered to the org-lifecycle function in {batches} SQS batches")
    for event in map(json.loads, stack.drain(results)):
        detail = event["detail"]
        if event["detail-type"] == "org-key-ready":
            say(
                f"   <- org-key-ready {detail['organizationId']:8} {detail['keyMode']:9} "
                f"{detail['region']:10} {short(detail['keyArn'])}"
            )
        else:
            say(f"   <- {event['detail-type']}: {detail.get('reason')}")
    dead = stack.dead_letters()
    reasons = sorted(
        {
            json.loads(line)["reason"]
            for line in logs.getvalue().splitlines()
            if line.startswith("{") and '"reason"' in line
        }
    )
    say(f"   dead-letter queue: {len(dead)} message(s); logged reason: {'; '.join(reasons)}")
    aliases = []
    for region in sorted({detail.get("region", "us-east-1") for detail in ORGS}):
        listed = stack.session().client("kms", region_name=region).list_aliases()["Aliases"]
        aliases += [a["AliasName"] for a in listed if a["AliasName"].startswith("alias/org-")]
    say(f"   org key aliases: {', '.join(sorted(aliases))} (exactly one per dedicated org)")


def _store(platform: Any, files: list[Path]) -> dict[str, list[str]]:
    say("\n3. Each organization stores files, encrypted under its own key:")
    owners = [org["organizationId"] for org in ORGS]
    stored: dict[str, list[str]] = {org: [] for org in owners}
    for index, path in enumerate(files):
        org = owners[index % len(owners)]
        with path.open("rb") as source:
            obj = platform.store.put(org, "document", path.name, source, path.stat().st_size)
        stored[org].append(obj.name)
        say(
            f"   {org:8} {obj.s3_key:34} {path.stat().st_size:>7} B -> {obj.size:>7} B "
            f"under {short(obj.key_arn)}"
        )
    return stored


def _isolation(platform: Any, objects: dict[str, list[str]]) -> None:
    say("\n4. Isolation: every cross-organization read is refused.")
    store, envelope = platform.store, platform.envelope
    acme_name, initech_name = objects["acme"][0], objects["initech"][0]
    raw = (
        platform.client("s3")
        .get_object(Bucket=platform.settings.data_bucket, Key=f"orgs/acme/{acme_name}")["Body"]
        .read()
    )
    attempts = [
        (
            "acme's ciphertext read as globex (another org key)",
            lambda: envelope.decrypt("globex", raw),
        ),
        (
            "initech's object read as hooli (same shared key; context check)",
            lambda: _read(store, "hooli", initech_name, envelope, platform, "initech"),
        ),
        ("acme's ciphertext with one byte flipped", lambda: envelope.decrypt("acme", _flip(raw))),
        ("acme's ciphertext truncated", lambda: envelope.decrypt("acme", raw[: len(raw) // 2])),
        (
            "acme's object read as acme with the wrong data type",
            lambda: envelope.decrypt("acme", raw, "invoice"),
        ),
    ]
    for label, attempt in attempts:
        try:
            attempt()
            say(f"   !! {label}: NOT refused")
        except DecryptionRefused as err:
            say(f"   refused  {label}\n            {err}")
    plaintext = envelope.decrypt("acme", raw, "document")
    say(f"   allowed  acme reads its own {acme_name}: {len(plaintext)} bytes")


def _migrate(stack: Any, platform: Any, org: str) -> None:
    say(f"\n6. Zero-downtime migration: {org} moves off the shared key (migration-requested)")
    sfn = stack.client("stepfunctions")
    machine = stack.outputs["MigrationStateMachineArn"]
    stack.put_events(
        [
            control_plane_entry(
                "migration-requested",
                {
                    "organizationId": org,
                    "cacheDrainSeconds": 0,
                    "reason": "demo: move off the shared key",
                },
            )
        ]
    )
    stack.deliver()
    execution = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        time.sleep(0.1)
    checkpoint = platform.checkpoints.get(org)
    say(
        f"   execution {execution.rsplit(':', 1)[-1]}: {status}; "
        f"{checkpoint.done} object(s) re-encrypted and SHA-256 verified, "
        f"{checkpoint.pages} page(s), now under {short(checkpoint.target_key_arn)}"
    )
    for retired in checkpoint.retired:
        say(
            f"   old key {short(retired['keyArn'])}: {retired['action']} "
            f"({retired.get('why') or retired.get('deletionDate')})"
        )
    platform.envelope.flush(org)
    name = platform.store.list(org)[0].name
    out = io.BytesIO()
    platform.store.get(org, name, out)
    say(f"   {org} reads {name} after the switch: {len(out.getvalue())} bytes")


def _tables(platform: Any, heading: str = "5. Organizations") -> None:
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    say(f"\n{heading}:")
    say(f"   {'org':8} {'mode':9} {'region':10} {'objects':>7} {'bytes':>8}  key / alias")
    for entry in inventory(records, objects):
        r = entry.record
        say(
            f"   {r.org_id:8} {r.key_mode:9} {r.region:10} {entry.objects:>7} {entry.bytes:>8}  "
            f"{short(r.encrypt_key_arn)} {r.alias_name or '(platform shared key)'}"
        )
    say("\n   Blast radius: what one leaked key exposes")
    for exposure in sorted(blast_radius(records, objects).values(), key=lambda e: -len(e.orgs)):
        say(
            f"   {short(exposure.key_arn)}: {len(exposure.orgs)} org(s) "
            f"[{', '.join(exposure.orgs)}], {exposure.objects} objects, {exposure.bytes} bytes"
        )
    total = sum(o.size for o in objects)
    say(
        f"   Were all {len(records)} orgs on one shared key, it would expose {len(objects)} "
        f"objects, {total} bytes."
    )


def _read(store: Any, org: str, name: str, envelope: Any, platform: Any, owner: str) -> bytes:
    raw = (
        platform.client("s3")
        .get_object(Bucket=platform.settings.data_bucket, Key=f"orgs/{owner}/{name}")["Body"]
        .read()
    )
    return bytes(envelope.decrypt(org, raw))


def _results_queue(stack: Any) -> str:
    """A demo-only rule that copies orgkms's result events to a queue we can print from."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="orgkms-demo-results")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    bus = stack.outputs["ControlPlaneBusName"]
    events.put_rule(
        Name="orgkms-demo-results",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["orgkms"]}),
    )
    events.put_targets(
        Rule="orgkms-demo-results",
        EventBusName=bus,
        Targets=[{"Id": "results", "Arn": arn["QueueArn"]}],
    )
    return str(url)


def _event(detail: dict[str, Any]) -> dict[str, Any]:
    return control_plane_entry("org-created", detail)


def _files(folder: Path, defaults: bool) -> list[Path]:
    if defaults:
        return [folder / name for name in DEFAULT_FILES if (folder / name).is_file()]
    found = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not found:
        raise FileNotFoundError(f"no files in {folder}")
    return found[:40]


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def short(arn: str) -> str:
    return arn.split(":", 3)[-1] if arn.startswith("arn:") else arn


def say(text: str) -> None:
    print(text, flush=True)
