"""Benchmark 9: many organizations (10,000; quick: 1,000), created by events and used.

* per-event cost: wall time per organization of a probe of 100 new orgs, each created through
  the real path (bus -> queue -> handler) and then used once (a 1 KiB record encrypted and
  decrypted, cold cache), measured when 10 orgs exist and again when all N exist; the ratio shows
  whether anything on the hot path grows with the number of orgs (a scan would);
* modelled peak KMS request rate: 1,000 encrypts per second spread uniformly over the N orgs,
  run through one envelope with its real cache bounds against the emulator's KMS (clock advanced
  1 ms per encrypt, KMS calls counted over 10 simulated seconds after 10 of warm-up), plus each
  cached org's data key refreshed once per max age. One process: each further process that
  serves all orgs adds the same again.
"""

import random
import time
from typing import Any

from benchlib import BenchStack, Figure, Report

PROBE = 100
RATE = 1_000  # encrypts per second
QUOTA = 10_000  # KMS requests per second, the default shared quota for symmetric operations


def run(bench: BenchStack, orgs: int) -> Report:
    stack, platform = bench.stack, bench.platform
    made = _create(stack, [f"many-{i:05d}" for i in range(10)])
    small = _probe(stack, platform, "probe-small")
    made += _create(stack, [f"many-{i:05d}" for i in range(10, orgs)])
    large = _probe(stack, platform, "probe-large")
    kms_per_s = _modelled_kms_rate(platform, [f"many-{i:05d}" for i in range(orgs)])
    figures = [
        Figure(
            "9", f"per-event cost at 10 orgs ({PROBE} new orgs created and used)", small * 1e3, "ms"
        ),
        Figure("9", f"per-event cost at {orgs:,} orgs", large * 1e3, "ms"),
        Figure("9", f"per-event cost, {orgs:,} orgs / 10 orgs", large / small, "x", goal=1.3),
        Figure(
            "9",
            f"modelled peak KMS requests/s, {orgs:,} orgs at {RATE:,} encrypts/s, one process",
            kms_per_s,
            "req/s",
        ),
        Figure("9", "same, share of the 10,000 req/s quota", kms_per_s / QUOTA * 100, "%", goal=10),
    ]
    details = {
        "many_orgs": {"orgs": made, "small_s": small, "large_s": large, "kms_per_s": kms_per_s}
    }
    return Report(figures=figures, details=details)


def _create(stack: Any, org_ids: list[str]) -> int:
    from orgkms.models import control_plane_entry

    for start in range(0, len(org_ids), 10):
        batch = org_ids[start : start + 10]
        stack.put_events([control_plane_entry("org-created", {"organizationId": o}) for o in batch])
        if start % 500 == 0:
            stack.deliver()
    stack.deliver()
    return len(org_ids)


def _probe(stack: Any, platform: Any, prefix: str) -> float:
    """Seconds per organization to create and first use PROBE new orgs."""
    org_ids = [f"{prefix}-{i:03d}" for i in range(PROBE)]
    record = random.Random(7).randbytes(1024)
    start = time.perf_counter()
    _create(stack, org_ids)
    for org in org_ids:
        message = platform.envelope.encrypt(org, "bench", record)
        if platform.envelope.decrypt(org, message, "bench") != record:
            raise RuntimeError("a record did not survive its round trip")
    return (time.perf_counter() - start) / PROBE


def _modelled_kms_rate(platform: Any, org_ids: list[str]) -> float:
    """KMS requests per second of one process encrypting RATE records/s over ``org_ids``.

    Measured: the calls of 10 simulated seconds after 10 of warm-up, through a real envelope (its
    per-process org cache and data-key cache bounds), shorter than the cache's max age. Added:
    the age bound's refresh, one GenerateDataKey per cached org per max age.
    """
    from orgkms.envelope import MAX_CACHED_ORGS, OrgEnvelope

    now = [0.0]
    envelope = OrgEnvelope(platform.lookup, platform.settings.cache, clock=lambda: now[0])
    rng = random.Random(11)
    record = b"x" * 1024
    warm, measured = 10 * RATE, 10 * RATE
    before = 0
    for i in range(warm + measured):
        if i == warm:
            before = envelope.kms_calls
        now[0] = i / RATE
        envelope.encrypt(rng.choice(org_ids), "bench", record)
    misses = (envelope.kms_calls - before) / (measured / RATE)
    refresh = min(len(org_ids), MAX_CACHED_ORGS) / platform.settings.cache.max_age_seconds
    return misses + refresh
