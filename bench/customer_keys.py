"""Benchmark 7: customer keys cost nothing extra.

The same workload runs for an organization on a platform-managed org key and for one on a
customer-managed key in another (emulated) account, reached through its key policy: N records of
1 KiB encrypted and decrypted, with the data-key cache dropped every 250 records so KMS calls
(GenerateDataKey, Decrypt) are part of the cost. Rounds alternate between the two orgs and the
median round counts, so drift of a noisy machine hits both alike. The figure is customer-key
time ÷ org-key time; the issue's goal (throughput ratio >= 0.9) is time ratio <= 1/0.9.
"""

import json
import statistics
import time
from typing import Any

from benchlib import BenchStack, Figure, Report, random_records

ROUNDS = 9
FLUSH_EVERY = 250
RECORD_SIZE = 1024


def run(bench: BenchStack, count: int) -> Report:
    platform_org, customer_org = "bench-org-key", "bench-customer-key"
    _org_on_platform_key(bench, platform_org)
    customer_arn = _org_on_customer_key(bench, customer_org)
    records = random_records(count, RECORD_SIZE)
    times: dict[str, list[float]] = {platform_org: [], customer_org: []}
    calls = dict.fromkeys(times, 0)
    for _ in range(ROUNDS):
        for org in times:
            before = bench.envelope.kms_calls
            times[org].append(_round(bench, org, records))
            calls[org] += bench.envelope.kms_calls - before
    org_s, customer_s = (statistics.median(times[o]) for o in (platform_org, customer_org))
    ratio = customer_s / org_s
    name = f"{count:,} records x {ROUNDS} rounds"
    return Report(
        figures=[
            Figure("7", f"{name}: org key, median round", org_s * 1000, "ms"),
            Figure("7", f"{name}: customer key, median round", customer_s * 1000, "ms"),
            Figure("7", "customer key time / org key time", ratio, "x", goal=round(1 / 0.9, 3)),
            Figure("7", "KMS calls per round, org key", calls[platform_org] / ROUNDS, "calls"),
            Figure("7", "KMS calls per round, customer key", calls[customer_org] / ROUNDS, "calls"),
        ],
        details={
            "customer_keys": {
                "records": count,
                "rounds": ROUNDS,
                "org_key_s": times[platform_org],
                "customer_key_s": times[customer_org],
                "customer_key_arn": customer_arn,
                "throughput_ratio": round(org_s / customer_s, 3),
            }
        },
        notes=[f"7: customer-key throughput = {org_s / customer_s:.2f} x org-key throughput"],
    )


def _round(bench: BenchStack, org: str, records: list[bytes]) -> float:
    envelope = bench.envelope
    start = time.perf_counter()
    for i, record in enumerate(records):
        if i % FLUSH_EVERY == 0:
            envelope.flush(org)
        if envelope.decrypt(org, envelope.encrypt(org, "bench", record), "bench") != record:
            raise RuntimeError("a record did not survive its round trip")
    return time.perf_counter() - start


def _org_on_platform_key(bench: BenchStack, org: str) -> None:
    import contextlib
    import io

    from orgkms.models import control_plane_entry

    bench.stack.put_events([control_plane_entry("org-created", {"organizationId": org})])
    with contextlib.redirect_stdout(io.StringIO()):
        bench.stack.deliver()


def _org_on_customer_key(bench: BenchStack, org: str) -> str:
    from orgkms.lifecycle import customer_key_service
    from orgkms.local.stack import CUSTOMER_ACCOUNT_ID

    _org_on_platform_key(bench, org)
    platform = bench.platform
    service = customer_key_service(platform)
    root: dict[str, Any] = {
        "Sid": "CustomerRoot",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT_ID}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    policy = {"Version": "2012-10-17", "Statement": [root, *service.policy_statements(org)]}
    key = bench.stack.customer_kms().create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    accepted = service.accept_key(platform.lookup(org), key)
    platform.registry.set_keys(org, accepted, [accepted], key_mode="customer")
    platform.envelope.flush(org)
    return str(accepted)
