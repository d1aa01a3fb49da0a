"""``orgkms demo``: the CISO story in three acts on the embedded stack.

Act 1, the shared-key risk: everything under one key. Act 2, per-organization protection: keys
created live, isolation shown, customer key control. Act 3, a breach simulation: what a leaked
shared key and a leaked org key expose, then an erasure and its receipt.

Each act is a list of step functions taking one :class:`DemoContext`; a step is added by
appending a function to the act's list (``ACT_2`` is where customer key control grows).
"""

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orgkms import demo_keys
from orgkms.errors import DecryptionRefused, OrgErased
from orgkms.models import control_plane_entry
from orgkms.report import blast_radius, inventory

OWNER = "arn:aws:iam::123456789012:role/acme-security-admin"
# Data keys stay cached 1 s here (60 s by default), so a revocation bites within a second and the
# re-key workflow's cache drain takes a second.
DEMO_CACHE_SECONDS = "1"
DEDICATED_ORGS: list[dict[str, Any]] = [
    {"organizationId": "acme", "ownerPrincipalArn": OWNER},
    {"organizationId": "globex", "region": "eu-west-1"},
]
LEGACY_ORGS: list[dict[str, Any]] = [
    {"organizationId": "initech", "keyMode": "shared"},
    {"organizationId": "hooli", "keyMode": "shared"},
]
ORGS = DEDICATED_ORGS + LEGACY_ORGS
HANDLER_LOGS = io.StringIO()
DEFAULT_FILES = [
    "README.md",
    "template.yaml",
    "pyproject.toml",
    "layers/orgkms/envelope.py",
    "layers/orgkms/keys.py",
    "Makefile",
]


@dataclass
class DemoContext:
    """What the steps share: the stack, its platform, the stored objects, the output folder."""

    stack: Any
    platform: Any
    results: str
    files: list[Path]
    out: Path
    objects: dict[str, list[str]] = field(default_factory=dict)
    step: int = 0

    def heading(self, text: str) -> None:
        self.step += 1
        say(f"\n{self.step}. {text}")


Step = Callable[[DemoContext], None]


def run_demo(data: Path | None, stack_name: str, out: Path | None = None) -> int:
    from orgkms.local import EmbeddedStack

    say("orgkms demo: per-organization KMS keys, on template.yaml deployed inside moto\n")
    started = time.monotonic()
    os.environ["ORGKMS_CACHE_MAX_AGE_SECONDS"] = DEMO_CACHE_SECONDS
    quiet = {
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "ORGKMS_CACHE_MAX_AGE_SECONDS": DEMO_CACHE_SECONDS,
    }
    with EmbeddedStack(stack_name, handler_env=quiet) as stack:
        say(
            f"Deployed {stack.root / 'template.yaml'} in {time.monotonic() - started:.1f} s: "
            f"bus {stack.outputs['ControlPlaneBusName']}, shared key "
            f"{_short(stack.outputs['SharedPlatformKeyArn'])}"
        )
        context = DemoContext(
            stack=stack,
            platform=stack.platform(),
            results=_results_queue(stack),
            files=_files(data or stack.root, data is None),
            out=(out or Path.cwd() / "demo-output"),
        )
        context.out.mkdir(parents=True, exist_ok=True)
        for title, steps in ACTS:
            say(f"\n=== {title} ===")
            for step in steps:
                step(context)
    say("\nDone. Next: `make test`, or `orgkms local serve` and point boto3 or the AWS CLI at it.")
    return 0


def step_legacy_orgs(ctx: DemoContext) -> None:
    ctx.heading("The legacy platform: organizations registered on the one shared key.")
    _create_orgs(ctx.stack, ctx.results, LEGACY_ORGS, extras=False)


def step_legacy_data(ctx: DemoContext) -> None:
    ctx.heading("They store files; all of it sits under the same key:")
    _store(ctx.platform, _share(ctx.files, 0, len(LEGACY_ORGS) * 2), LEGACY_ORGS, ctx.objects)


def step_shared_key_risk(ctx: DemoContext) -> None:
    ctx.heading("The risk: one leaked key, or one wrong tenant id, exposes everyone on it.")
    _exposure_lines(ctx.platform, only_key=ctx.platform.settings.shared_key_arn)


def step_create_orgs(ctx: DemoContext) -> None:
    ctx.heading("orgkms: the control plane's org-created events make keys live (and some fail):")
    _create_orgs(ctx.stack, ctx.results, DEDICATED_ORGS, extras=True)


def step_store(ctx: DemoContext) -> None:
    ctx.heading("Each new organization stores files, encrypted under its own key:")
    first = len(LEGACY_ORGS) * 2
    count = max(len(ctx.files) - first, len(DEDICATED_ORGS) * 2)
    _store(ctx.platform, _share(ctx.files, first, count), DEDICATED_ORGS, ctx.objects)


def step_isolation(ctx: DemoContext) -> None:
    ctx.heading("Isolation: every cross-organization read is refused.")
    _isolation(ctx.platform, ctx.objects)


def step_inventory(ctx: DemoContext) -> None:
    ctx.heading("Organizations and what each key exposes:")
    _tables(ctx.platform)


def step_migrate(ctx: DemoContext) -> None:
    ctx.heading("Zero-downtime migration: initech moves off the shared key (migration-requested)")
    _migrate(ctx.stack, ctx.platform, "initech")


def step_customer_key(ctx: DemoContext) -> None:
    ctx.heading("Customer key control: acme brings its own key, revokes it, restores it.")
    key = demo_keys.customer_brings_its_key(ctx.stack, ctx.platform, ctx.results, "acme")
    demo_keys.customer_revokes_and_restores(ctx.stack, ctx.platform, ctx.results, "acme", key)


def step_rotation(ctx: DemoContext) -> None:
    ctx.heading("Rotation, reported per key model:")
    demo_keys.rotation_reported(ctx.stack, ctx.platform, ctx.results, ["globex", "acme", "hooli"])


def step_compromise(ctx: DemoContext) -> None:
    ctx.heading("Responding to a leaked org key: new key, re-key, old key retired.")
    demo_keys.org_key_compromised(ctx.stack, ctx.platform, ctx.results, "globex")


def step_breach(ctx: DemoContext) -> None:
    ctx.heading("Breach simulation: the shared key leaks vs. one org key leaks.")
    from orgkms.chart import write_chart
    from orgkms.cli import _chart_rows
    from orgkms.report import blast_radius, breach_comparison

    platform = ctx.platform
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    exposures = blast_radius(records, objects)
    comparison = breach_comparison(exposures, platform.settings.shared_key_arn, 250_000.0)
    for label, name in (
        ("every org on one shared key", "allOrgsOnSharedKey"),
        ("the shared key today", "sharedKeyNow"),
        ("the largest org key", "largestOrgKey"),
    ):
        row = comparison[name]
        say(
            f"   leak of {label:28}: {row['orgs']} org(s), {row['objects']:>3} objects, "
            f"{row['bytes']:>7} bytes, exposure {row['value']:>12,.0f} (250,000 per org)"
        )
    say(
        f"   cached data keys extend any exposure by at most "
        f"{platform.settings.cache.max_age_seconds:g} s after the key is disabled"
    )
    chart = write_chart(
        ctx.out / "blast-radius.svg",
        _chart_rows(comparison, exposures, platform),
        "What one leaked key exposes: shared vs per-org keys",
    )
    say(f"   chart: {chart}")


def step_erasure(ctx: DemoContext) -> None:
    ctx.heading("Right to erasure: globex asks to be forgotten.")
    from orgkms.erasure import ErasureService

    platform = ctx.platform
    receipt = ErasureService.from_platform(platform).erase(
        "globex", reason="demo: customer erasure request"
    )
    path = ctx.out / "erasure-receipt-globex.json"
    path.write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
    for key in receipt["keys"]:
        say(f"   key {_short(key['keyArn'])}: {key['action']} on {key.get('deletionDate')}")
    say(
        f"   {receipt['objects']} objects ({receipt['bytes']} bytes, {receipt['versions']} "
        f"versions) deleted; residue {len(receipt['residue'])}; audit entry "
        f"{receipt['auditEntry']['hash'][:16]}...; receipt {path}"
    )
    try:
        platform.envelope.encrypt("globex", "document", b"anything")
        say("   !! globex still encrypts")
    except OrgErased as err:
        say(f"   refused  {err}")
    verified = platform.audit.verify("globex")
    say(f"   audit trail of globex: {verified.entries} entries, hash chain intact")


ACT_1: list[Step] = [step_legacy_orgs, step_legacy_data, step_shared_key_risk]
ACT_2: list[Step] = [
    step_create_orgs,
    step_store,
    step_isolation,
    step_inventory,
    step_migrate,
    step_customer_key,
    step_rotation,
]
ACT_3: list[Step] = [step_breach, step_compromise, step_erasure]
ACTS: list[tuple[str, list[Step]]] = [
    ("Act 1: the shared-key risk", ACT_1),
    ("Act 2: per-organization protection", ACT_2),
    ("Act 3: a breach, and an erasure", ACT_3),
]


def _create_orgs(stack: Any, results: str, orgs: list[dict[str, Any]], extras: bool) -> None:
    entries = [_event(detail) for detail in orgs]
    for detail in orgs:
        say(f"   org-created {json.dumps(detail)}")
    if extras:
        entries += [_event(orgs[0]), _event(orgs[0])]
        entries.append(_event({"organizationId": "../etc/passwd"}))
        say(f"   org-created for {orgs[0]['organizationId']} twice more (duplicate deliveries)")
        say('   org-created {"organizationId": "../etc/passwd"} (invalid)')
    stack.put_events(entries)
    # The functions' logger keeps the stream it first wrote to: one buffer for the whole demo.
    start = HANDLER_LOGS.tell()
    with contextlib.redirect_stdout(HANDLER_LOGS):
        batches = stack.deliver()
    logged = HANDLER_LOGS.getvalue()[start:]
    say(f"   -> delivered to the org-lifecycle function in {batches} SQS batches")
    for event in map(json.loads, stack.drain(results)):
        detail = event["detail"]
        if event["detail-type"] == "org-key-ready":
            say(
                f"   <- org-key-ready {detail['organizationId']:8} {detail['keyMode']:9} "
                f"{detail['region']:10} {_short(detail['keyArn'])}"
            )
        else:
            say(f"   <- {event['detail-type']}: {detail.get('reason')}")
    if not extras:
        return
    dead = stack.dead_letters()
    reasons = sorted(
        {
            json.loads(line)["reason"]
            for line in logged.splitlines()
            if line.startswith("{") and '"reason"' in line
        }
    )
    say(f"   dead-letter queue: {len(dead)} message(s); logged reason: {'; '.join(reasons)}")
    aliases = []
    for region in sorted({detail.get("region", "us-east-1") for detail in ORGS}):
        listed = stack.session().client("kms", region_name=region).list_aliases()["Aliases"]
        aliases += [a["AliasName"] for a in listed if a["AliasName"].startswith("alias/org-")]
    say(f"   org key aliases: {', '.join(sorted(aliases))} (exactly one per dedicated org)")


def _share(files: list[Path], first: int, count: int) -> list[Path]:
    """``count`` files from position ``first``, reusing files when there are too few, so every
    organization stores something whatever folder ``--data`` names."""
    return [files[(first + i) % len(files)] for i in range(count)]


def _store(
    platform: Any, files: list[Path], orgs: list[dict[str, Any]], stored: dict[str, list[str]]
) -> None:
    owners = [org["organizationId"] for org in orgs]
    for org in owners:
        stored.setdefault(org, [])
    for index, path in enumerate(files):
        org = owners[index % len(owners)]
        with path.open("rb") as source:
            obj = platform.store.put(org, "document", path.name, source, path.stat().st_size)
        stored[org].append(obj.name)
        say(
            f"   {org:8} {obj.s3_key:34} {path.stat().st_size:>7} B -> {obj.size:>7} B "
            f"under {_short(obj.key_arn)}"
        )


def _isolation(platform: Any, objects: dict[str, list[str]]) -> None:
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
    before = stack.executions()
    detail = {"organizationId": org, "cacheDrainSeconds": 0, "reason": "demo: off the shared key"}
    stack.put_events([control_plane_entry("migration-requested", detail)])
    stack.deliver()
    described = stack.wait_for_execution(before)
    execution, status = described["executionArn"], described["status"]
    checkpoint = platform.checkpoints.get(org)
    say(
        f"   execution {execution.rsplit(':', 1)[-1]}: {status}; "
        f"{checkpoint.done} object(s) re-encrypted and SHA-256 verified, "
        f"{checkpoint.pages} page(s), now under {_short(checkpoint.target_key_arn)}"
    )
    for retired in checkpoint.retired:
        say(
            f"   old key {_short(retired['keyArn'])}: {retired['action']} "
            f"({retired.get('why') or retired.get('deletionDate')})"
        )
    platform.envelope.flush(org)
    name = platform.store.list(org)[0].name
    out = io.BytesIO()
    platform.store.get(org, name, out)
    say(f"   {org} reads {name} after the switch: {len(out.getvalue())} bytes")


def _tables(platform: Any) -> None:
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    say(f"   {'org':8} {'mode':9} {'region':10} {'objects':>7} {'bytes':>8}  key / alias")
    for entry in inventory(records, objects):
        r = entry.record
        say(
            f"   {r.org_id:8} {r.key_mode:9} {r.region:10} {entry.objects:>7} {entry.bytes:>8}  "
            f"{_short(r.encrypt_key_arn)} {r.alias_name or '(platform shared key)'}"
        )
    say("\n   Blast radius: what one leaked key exposes")
    _exposure_lines(platform)


def _exposure_lines(platform: Any, only_key: str | None = None) -> None:
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    for exposure in sorted(blast_radius(records, objects).values(), key=lambda e: -len(e.orgs)):
        if only_key and exposure.key_arn != only_key:
            continue
        say(
            f"   {_short(exposure.key_arn)}: {len(exposure.orgs)} org(s) "
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
    """A demo-only queue that receives orgkms's result events, to print from."""
    return str(stack.subscribe("orgkms-demo-results"))


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


def _short(arn: str) -> str:
    return arn.split(":", 3)[-1] if arn.startswith("arn:") else arn


def say(text: str) -> None:
    print(text, flush=True)
