"""Benchmark 6: the re-key workflow (statemachines/migration.asl.json) against a naive loop.

Part 1, many objects (1,000 x 64 KiB; quick: 200), in the shared embedded stack (this process).
A shared-mode organization's objects are stored with ``OrgStore.put``; then every KMS API call
the emulator serves, whoever makes it (the workflow's in-process Lambda included), sleeps 10 ms
first and is counted: moto's ``KmsResponse.call_action`` is wrapped here, after seeding, and
unwrapped afterwards.

* ours: a ``migration-requested`` event (``cacheDrainSeconds`` 0) through the control plane;
  timed from the event to the end of the execution that moto's Step Functions interpreter runs
  (page size 200, 8 workers: the defaults). The workflow makes the org's own key, re-encrypts
  every object, reads each rewrite back, validates every object under the new key alone, then
  switches;
* naive: a second shared-mode organization seeded with the same objects once ours has ended (so
  they are not in the bucket while ours runs), then one sequential loop: the org's objects
  listed, a key made with ``kms.create_key()``, and per object GetObject, a plain
  ``EncryptionSDKClient`` decrypt with a ``StrictAwsKmsMasterKeyProvider`` on the shared key (no
  cache: one Decrypt), an encrypt under the new key with the same context, suite and frame size
  (no cache: one GenerateDataKey) and PutObject; no read-back, no validation;
* rerun: the first org's migration requested again with its new key as ``targetKeyArn``; the
  object versions under its prefix are counted (ListObjectVersions) before and after.

Figures: ours/naive for time (goal <= 0.2) and for KMS calls (<= 0.01), objects the rerun
rewrote (goal 0). Notes, for diagnosis: time per workflow step (from the execution history) and
AWS calls per object by operation (``BaseClient._make_api_call`` counted during ours), CPU time
in moto's ListObjectVersions, which deep-copies every version in the bucket on each call (and
keeps the copies until the mock stops: memory grows by the bucket's size per call).

Part 2, one big object (1 GiB; quick: 128 MiB), in child processes (``python bench/migration.py
--child MODE BYTES``), each deploying the embedded stack of its own:

* workflow: a shared-mode organization's object stored with ``OrgStore.put`` from a lazily made,
  non-seekable stream (the bytes never exist in memory at once); a small migration of another
  org first warms the workflow up (handler imported, clients built); then the big object's
  migration. RSS: the kernel's peak mark is reset just before the migration (clear_refs) and
  VmHWM read after it, VmRSS also sampled every 5 ms (as benchmark 3 does); growth = peak minus
  the RSS just before;
* emulator: the same size object put with plain S3 calls, then the S3 calls the workflow makes
  for it (GetObject read through, a sequential multipart upload of the new version in 8 MiB
  parts, ListObjectVersions, the read-back, HeadObject and the message header, the sweep of
  noncurrent versions) with no encryption, measured the same way. moto holds every part, then
  the joined object twice over while completing the upload, each GetObject's body whole, and a
  copy of every version in the bucket per ListObjectVersions: the emulator's share, not orgkms's.

Figures: the workflow's peak RSS growth (goal <= 128 MiB), the emulator-only growth, and the
difference (what orgkms itself adds, approximately: peaks of different runs do not subtract
exactly).
"""

import argparse
import contextlib
import io
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from benchlib import (
    CHILD_MARK,
    MIB,
    QUIET_HANDLERS,
    BenchStack,
    Figure,
    GeneratorReader,
    Report,
    pattern_chunks,
    random_records,
    run_child,
)
from memory import measure_rss
from moto.s3.models import S3Backend

from orgkms.envelope import ALGORITHM, FRAME_LENGTH
from orgkms.store import META_KEY_ARN

HERE = Path(__file__).resolve()
CHILD_TIMEOUT = 1200
OBJECT_SIZE = 64 * 1024
KMS_LATENCY = 0.010
PAGE_SIZE = "200"
DATA_TYPE = "document"
ORG_OURS = "bench-rekey-ours"
ORG_NAIVE = "bench-rekey-naive"
ORG_BIG = "bench-rekey-big"
ORG_WARM = "bench-rekey-warm"
PART_BYTES = 8 * MIB
RUN_TIMEOUT = 1800.0
POLL = 0.02


def run(bench: BenchStack, objects: int, big_bytes: int) -> Report:
    report = _many_objects(bench, objects)
    report.extend(_big_object(big_bytes))
    return report


# ----------------------------------------------------------------- instrumentation


class KmsLatency:
    """While active, every KMS API call the emulator serves sleeps first and is counted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._saved: Any = None

    def __enter__(self) -> "KmsLatency":
        from moto.kms.responses import KmsResponse

        self._saved = KmsResponse.__dict__.get("call_action")
        original = KmsResponse.call_action
        latency = self

        def call_action(response: Any) -> Any:
            time.sleep(latency.delay)
            with latency._lock:
                latency.calls[response._get_action()] += 1
            return original(response)

        KmsResponse.call_action = call_action  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.kms.responses import KmsResponse

        if self._saved is None:
            del KmsResponse.call_action
        else:
            KmsResponse.call_action = self._saved  # type: ignore[method-assign]

    def total(self) -> int:
        return sum(self.calls.values())


@contextlib.contextmanager
def cpu_in(cls: Any, name: str) -> Iterator[dict[str, float]]:
    """CPU seconds (of the calling threads) spent in ``cls.name`` while active, and its calls."""
    original = cls.__dict__[name]
    stats = {"calls": 0.0, "cpu_s": 0.0}
    lock = threading.Lock()

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                stats["calls"] += 1
                stats["cpu_s"] += time.thread_time() - start

    setattr(cls, name, timed)
    try:
        yield stats
    finally:
        setattr(cls, name, original)


@contextlib.contextmanager
def api_calls() -> Iterator[Counter[str]]:
    """Every AWS API call made by any botocore client in this process, as ``service:Operation``."""
    from botocore.client import BaseClient

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def counted(client: Any, operation: str, params: Any) -> Any:
        with lock:
            counts[f"{client.meta.service_model.service_name}:{operation}"] += 1
        return original(client, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


# ----------------------------------------------------------------- the workflow, driven


def create_shared_org(stack: Any, org_id: str) -> None:
    from orgkms.models import control_plane_entry

    stack.put_events(
        [control_plane_entry("org-created", {"organizationId": org_id, "keyMode": "shared"})]
    )
    with contextlib.redirect_stdout(io.StringIO()):
        stack.deliver()


def migrate(stack: Any, org_id: str, **detail: Any) -> dict[str, Any]:
    """Request a migration through the control plane; wait for its execution to end."""
    from orgkms.models import control_plane_entry

    sfn = stack.client("stepfunctions")
    machine = stack.outputs["MigrationStateMachineArn"]
    before = {e["executionArn"] for e in _executions(sfn, machine)}
    request = {"organizationId": org_id, "cacheDrainSeconds": 0, **detail}
    stack.put_events([control_plane_entry("migration-requested", request)])
    with contextlib.redirect_stdout(io.StringIO()):
        stack.deliver()
    started_by, deadline = time.monotonic() + 30, time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        new = [e for e in _executions(sfn, machine) if e["executionArn"] not in before]
        if new and new[0]["status"] != "RUNNING":
            return dict(sfn.describe_execution(executionArn=new[0]["executionArn"]))
        if not new and time.monotonic() > started_by:
            raise RuntimeError(f"no migration execution started for {org_id!r}")
        time.sleep(POLL)
    raise RuntimeError(f"the migration of {org_id!r} did not end in {RUN_TIMEOUT:.0f} s")


def _executions(sfn: Any, machine: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
    return [e for page in pages for e in page["executions"]]


def step_seconds(stack: Any, execution_arn: str) -> dict[str, dict[str, float]]:
    """Per state of the execution: how many times it ran and the seconds it took in all."""
    sfn = stack.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    entered: dict[str, Any] = {}
    steps: dict[str, dict[str, float]] = {}
    for event in (e for page in pages for e in page["events"]):
        if event["type"].endswith("StateEntered"):
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif event["type"].endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            step = steps.setdefault(name, {"runs": 0, "seconds": 0.0})
            step["runs"] += 1
            if name in entered:
                step["seconds"] += (event["timestamp"] - entered.pop(name)).total_seconds()
    return steps


def count_versions(stack: Any, bucket: str, prefix: str) -> int:
    pages = (
        stack.client("s3")
        .get_paginator("list_object_versions")
        .paginate(Bucket=bucket, Prefix=prefix)
    )
    return sum(1 for page in pages for v in page.get("Versions", []) if v["Key"].startswith(prefix))


# ----------------------------------------------------------------- part 1: many objects


def _many_objects(bench: BenchStack, count: int) -> Report:
    stack, platform = bench.stack, bench.platform
    stack.runtime.configure(
        stack.outputs["MigrationFunctionName"], ORGKMS_MIGRATION_PAGE_SIZE=PAGE_SIZE
    )
    bucket = platform.settings.data_bucket
    shared = platform.settings.shared_key_arn
    objects = random_records(count, OBJECT_SIZE)
    names = [f"doc-{i:05d}.bin" for i in range(count)]

    _seed(stack, platform, ORG_OURS, names, objects)
    with (
        KmsLatency(KMS_LATENCY) as kms,
        api_calls() as calls,
        cpu_in(S3Backend, "list_object_versions") as listing,
    ):
        cpu, start = time.process_time(), time.perf_counter()
        execution = migrate(stack, ORG_OURS)
        ours_s = time.perf_counter() - start
        ours_cpu = time.process_time() - cpu
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"the re-key workflow ended {execution['status']}")
    checkpoint = platform.checkpoints.get(ORG_OURS)
    if (checkpoint.done, checkpoint.failed) != (count, 0):
        raise RuntimeError(
            f"the workflow re-encrypted {checkpoint.done}, failed {checkpoint.failed}"
        )
    steps = step_seconds(stack, execution["executionArn"])
    ours_kms = kms.total()

    target = platform.registry.get(ORG_OURS).encrypt_key_arn
    prefix = f"orgs/{ORG_OURS}/"
    before = count_versions(stack, bucket, prefix)
    with KmsLatency(KMS_LATENCY), _quiet("moto.stepfunctions"):  # the refusal logs an error
        rerun = migrate(stack, ORG_OURS, targetKeyArn=target)
    rewritten = count_versions(stack, bucket, prefix) - before

    _seed(stack, platform, ORG_NAIVE, names, objects)
    with KmsLatency(KMS_LATENCY) as naive_kms:
        start = time.perf_counter()
        naive_target = _naive(stack, bucket, shared, ORG_NAIVE)
        naive_s = time.perf_counter() - start
    _check_naive(stack, bucket, naive_target, names[0], objects[0])
    naive_calls = naive_kms.total()

    name = f"{count:,} x 64 KiB re-key, KMS +10 ms"
    figures = [
        Figure("6", f"{name}: ours (workflow) time", ours_s, "s"),
        Figure("6", f"{name}: naive loop time", naive_s, "s"),
        Figure("6", f"{name}: time ours / naive", ours_s / naive_s, "x", goal=0.2),
        Figure("6", f"{name}: ours KMS calls", ours_kms, "calls"),
        Figure("6", f"{name}: naive KMS calls", naive_calls, "calls"),
        Figure("6", f"{name}: KMS calls ours / naive", ours_kms / naive_calls, "x", goal=0.01),
        Figure(
            "6",
            f"rerun onto the same key ({rerun['status']}): objects rewritten",
            rewritten,
            "objects",
            goal=0,
        ),
    ]
    per_object = {
        op: round(n / count, 2) for op, n in sorted(calls.items()) if op.startswith(("s3:", "kms:"))
    }
    details = {
        "migration": {
            "objects": count,
            "object_bytes": OBJECT_SIZE,
            "kms_latency_s": KMS_LATENCY,
            "ours_s": ours_s,
            "ours_cpu_s": ours_cpu,
            "ours_list_object_versions": listing,
            "naive_s": naive_s,
            "ours_kms_calls": dict(kms.calls),
            "naive_kms_calls": dict(naive_kms.calls),
            "ours_steps": steps,
            "ours_calls_per_object": per_object,
            "rerun_status": rerun["status"],
            "versions_before_rerun": before,
        }
    }
    notes = [
        "6: ours per step: "
        + "; ".join(f"{k} x{v['runs']:.0f} {v['seconds']:.1f} s" for k, v in steps.items()),
        "6: ours AWS calls per object: "
        + ", ".join(f"{op} {n:g}" for op, n in per_object.items() if op.startswith("s3:")),
        "6: ours KMS calls: " + ", ".join(f"{op} {n}" for op, n in sorted(kms.calls.items())),
        f"6: ours used {ours_cpu:.0f} CPU-s in {ours_s:.0f} s; moto's ListObjectVersions (copies "
        f"every version in the bucket per call) took {listing['cpu_s']:.0f} CPU-s of it "
        f"in {listing['calls']:.0f} calls; without that, about {ours_s - listing['cpu_s']:.0f} s "
        f"(ours / naive {(ours_s - listing['cpu_s']) / naive_s:.2f})",
    ]
    return Report(figures=figures, details=details, notes=notes)


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    log = logging.getLogger(logger_name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _seed(stack: Any, platform: Any, org_id: str, names: list[str], objects: list[bytes]) -> None:
    create_shared_org(stack, org_id)
    for name, data in zip(names, objects, strict=True):
        platform.store.put(org_id, DATA_TYPE, name, io.BytesIO(data), len(data))


def _naive(stack: Any, bucket: str, shared_key_arn: str, org_id: str) -> str:
    """Re-encrypt every object of ``org_id`` one by one, no data-key cache; the new key's ARN."""
    s3, kms = stack.client("s3"), stack.client("kms")
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"orgs/{org_id}/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    target = kms.create_key()["KeyMetadata"]["Arn"]
    session = botocore.session.Session()
    source = StrictAwsKmsMasterKeyProvider(key_ids=[shared_key_arn], botocore_session=session)
    sink = StrictAwsKmsMasterKeyProvider(key_ids=[target], botocore_session=session)
    for key in keys:
        got = s3.get_object(Bucket=bucket, Key=key)
        plaintext, header = sdk.decrypt(source=got["Body"].read(), key_provider=source)
        message, _ = sdk.encrypt(
            source=plaintext,
            key_provider=sink,
            encryption_context=dict(header.encryption_context),
            algorithm=ALGORITHM,
            frame_length=FRAME_LENGTH,
        )
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=message,
            ContentType=got["ContentType"],
            Metadata={**got["Metadata"], META_KEY_ARN: target},
        )
    return target


def _check_naive(stack: Any, bucket: str, target: str, name: str, expected: bytes) -> None:
    """The naive loop's first object opens with its new key alone and holds the original."""
    body = stack.client("s3").get_object(Bucket=bucket, Key=f"orgs/{ORG_NAIVE}/{name}")["Body"]
    provider = StrictAwsKmsMasterKeyProvider(
        key_ids=[target], botocore_session=botocore.session.Session()
    )
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    plaintext, _ = sdk.decrypt(source=body.read(), key_provider=provider)
    if plaintext != expected:
        raise RuntimeError("the naive loop did not keep an object's content")


# ----------------------------------------------------------------- part 2: one big object


def _big_object(size: int) -> Report:
    workflow = _run_child("workflow", size)
    emulator = _run_child("emulator", workflow["message_bytes"])
    growth = workflow["growth_kib"] / 1024
    emulator_growth = emulator["growth_kib"] / 1024
    name = f"re-key one {size / MIB:,.0f} MiB object"
    figures = [
        Figure("6", f"{name}: peak RSS growth", growth, "MiB", goal=128),
        Figure("6", f"{name}: emulator alone, same S3 calls", emulator_growth, "MiB"),
        Figure("6", f"{name}: workflow minus emulator alone", growth - emulator_growth, "MiB"),
        Figure("6", f"{name}: workflow time", workflow["seconds"], "s"),
    ]
    notes = [
        f"6: big object: peak RSS from {workflow['method']}; growth = peak - RSS just before; "
        f"RSS kept after the migration: {workflow['kept_kib'] / 1024:,.0f} MiB (workflow), "
        f"{emulator['kept_kib'] / 1024:,.0f} MiB (emulator alone)",
        "6: big object, emulator alone, peak RSS growth per call: "
        + ", ".join(f"{k} {v / 1024:,.0f} MiB" for k, v in emulator["growth_by_call_kib"].items()),
        "6: big object steps: "
        + "; ".join(
            f"{k} x{v['runs']:.0f} {v['seconds']:.1f} s" for k, v in workflow["steps"].items()
        ),
    ]
    details = {"migration_big": {"workflow": workflow, "emulator": emulator}}
    return Report(figures=figures, details=details, notes=notes)


def _run_child(mode: str, size: int) -> dict[str, Any]:
    return run_child(HERE, [mode, str(size)], f"migration {mode}", CHILD_TIMEOUT)


# ----------------------------------------------------------------- the children


def _lazy(size: int) -> GeneratorReader:
    """``size`` bytes made lazily from one random 1 MiB block: never all in memory."""
    return GeneratorReader(pattern_chunks(size, os.urandom(MIB)))


def _child_workflow(stack: Any, size: int, phases: "Phases") -> dict[str, Any]:
    platform = stack.platform()
    for org_id, name, length in ((ORG_WARM, "warm.bin", 12 * MIB), (ORG_BIG, "big.bin", size)):
        create_shared_org(stack, org_id)
        platform.store.put(org_id, DATA_TYPE, name, _lazy(length), length)
    phases.mark("seed")
    if migrate(stack, ORG_WARM)["status"] != "SUCCEEDED":
        raise RuntimeError("the warm-up migration failed")
    phases.mark("warm-up")
    execution, result = measure_rss(lambda: migrate(stack, ORG_BIG))
    phases.mark("measured")
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"the big object's migration ended {execution['status']}")
    head = stack.client("s3").head_object(
        Bucket=platform.settings.data_bucket, Key=f"orgs/{ORG_BIG}/big.bin"
    )
    return {
        **result,
        "bytes": size,
        "message_bytes": int(head["ContentLength"]),
        "steps": step_seconds(stack, execution["executionArn"]),
    }


def _child_emulator(stack: Any, size: int, phases: "Phases") -> dict[str, Any]:
    s3, bucket = stack.client("s3"), stack.platform().settings.data_bucket
    warm, big = "orgs/bench-emulator/warm.bin", "orgs/bench-emulator/big.bin"
    for key, length in ((warm, 12 * MIB), (big, size)):
        # Full reads, so that s3transfer uploads in parts as it does for the workflow: on a
        # short first read it sends one PutObject, which botocore's aws-chunked body and moto
        # both join by repeated concatenation (quadratic: about 11 minutes for 1 GiB).
        s3.upload_fileobj(io.BufferedReader(_lazy(length), PART_BYTES), bucket, key)
    phases.mark("seed")
    _replay(s3, bucket, warm, 12 * MIB)
    phases.mark("warm-up")
    _, result = measure_rss(lambda: _replay(s3, bucket, big, size))
    phases.mark("measured")
    # Where the emulator's memory goes, one call at a time (the object has 2 versions by now).
    calls = {
        "ListObjectVersions": lambda: s3.list_object_versions(Bucket=bucket, Prefix=big),
        "GetObject": lambda: _drain(s3.get_object(Bucket=bucket, Key=big)["Body"]),
        "multipart upload": lambda: _multipart_put(s3, bucket, big, size),
    }
    by_call = {name: measure_rss(fn)[1]["growth_kib"] for name, fn in calls.items()}
    phases.mark("per call")
    return {**result, "bytes": size, "growth_by_call_kib": by_call}


def _replay(s3: Any, bucket: str, key: str, size: int) -> None:
    """The S3 calls the workflow makes to re-key and validate one object, without encryption:
    the new version uploaded part by part (8 MiB, one part in hand at a time), as it does."""
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)
    _drain(s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"])
    new_version = _multipart_put(s3, bucket, key, size)
    s3.list_object_versions(Bucket=bucket, Prefix=key)
    _drain(s3.get_object(Bucket=bucket, Key=key, VersionId=new_version)["Body"])
    # validate_page: HeadObject, the message header; then the sweep of noncurrent versions
    s3.head_object(Bucket=bucket, Key=key)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    body.read(4096)
    body.close()
    prefix = key.rsplit("/", 1)[0] + "/"
    for listed in s3.list_object_versions(Bucket=bucket, Prefix=prefix)["Versions"]:
        if listed["Key"] == key and not listed["IsLatest"]:
            s3.head_object(Bucket=bucket, Key=key, VersionId=listed["VersionId"])


def _multipart_put(s3: Any, bucket: str, key: str, size: int) -> str:
    """A new version of ``key`` made of ``size`` bytes, uploaded one 8 MiB part at a time."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    block = os.urandom(PART_BYTES)
    for number, part in enumerate(pattern_chunks(size, block), start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=part
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return str(done["VersionId"])


def _drain(body: Any) -> None:
    with body:
        while body.read(64 * 1024):
            pass


class Phases:
    """Wall-clock seconds of the phases of a child, for the JSON details."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 2)
        self._last = now


def child(mode: str, size: int) -> None:
    from orgkms.local import EmbeddedStack

    phases = Phases()
    with EmbeddedStack(handler_env=QUIET_HANDLERS) as stack:
        phases.mark("deploy")
        run_mode = _child_workflow if mode == "workflow" else _child_emulator
        result = run_mode(stack, size, phases)
    phases.mark("stop")
    print(CHILD_MARK + json.dumps({**result, "phase_seconds": phases.seconds}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "BYTES"), required=True)
    mode, size = parser.parse_args().child
    if mode not in ("workflow", "emulator"):
        parser.error("MODE is workflow or emulator")
    child(mode, int(size))
