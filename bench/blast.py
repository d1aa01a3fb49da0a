"""Benchmark 8: the blast-radius report and the CloudTrail audit at scale, with no AWS at all.

* blast radius: :func:`orgkms.report.blast_radius` over synthetic registry records and object
  metadata (what ``store.list`` returns: key ARN, size), 1,000 orgs with 100,000 objects, then
  10,000 orgs with 1,000,000 objects; a fifth of the orgs on the shared key. The goal is linear
  growth: time at 10,000 / time at 1,000 <= 12. The metadata is built before the clock starts, so
  the figure is the report's computation alone (no S3 listing, no KMS call);
* audit: :func:`orgkms.cloudtrail.key_usage` reads 5,000 CloudTrail events of one org key from a
  client that answers LookupEvents pages of 50 as CloudTrail does; the pacing clock is injected,
  so the figure is the request rate the lookup would impose on CloudTrail (goal <= 2 per second,
  LookupEvents' limit), not how long this process waited.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchlib import Figure, Report, median_time

from orgkms.cloudtrail import PAGE_SIZE, Pacer, key_usage
from orgkms.registry import OrgRecord
from orgkms.report import blast_radius
from orgkms.store import StoredObject

SHARED = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
OBJECTS_PER_ORG = 100


def run(orgs: int = 10_000, events: int = 5_000) -> Report:
    small, large = orgs // 10, orgs
    small_s, large_s = _blast_seconds(small), _blast_seconds(large)
    requests, peak_rate, counted = _audit(events)
    figures = [
        Figure(
            "8", f"blast radius, {small:,} orgs / {small * OBJECTS_PER_ORG:,} objects", small_s, "s"
        ),
        Figure(
            "8", f"blast radius, {large:,} orgs / {large * OBJECTS_PER_ORG:,} objects", large_s, "s"
        ),
        Figure(
            "8",
            f"blast radius time ratio {large:,} / {small:,} orgs",
            large_s / small_s,
            "x",
            goal=12,
        ),
        Figure(
            "8", f"audit of {events:,} CloudTrail events: LookupEvents requests", requests, "calls"
        ),
        Figure("8", "audit: peak LookupEvents rate (injected clock)", peak_rate, "req/s", goal=2),
    ]
    details = {
        "blast": {"small_s": small_s, "large_s": large_s, "objects_per_org": OBJECTS_PER_ORG},
        "audit": {"events": events, "counted": counted, "requests": requests, "peak": peak_rate},
    }
    return Report(figures=figures, details=details)


def _blast_seconds(orgs: int) -> float:
    records, objects = _synthetic(orgs)
    exposure = blast_radius(records, objects)
    if sum(e.objects for e in exposure.values()) != len(objects):
        raise RuntimeError("blast radius lost objects")
    return median_time(lambda: blast_radius(records, objects), repeats=3)


def _synthetic(orgs: int) -> tuple[list[OrgRecord], list[StoredObject]]:
    records, objects = [], []
    for index in range(orgs):
        org = f"org-{index:06d}"
        key = SHARED if index % 5 == 0 else f"{SHARED[:-12]}{index:012d}"
        records.append(OrgRecord(org, "READY", "dedicated", "us-east-1", key, (key,)))
        objects += [
            StoredObject(org, f"f{n}", f"orgs/{org}/f{n}", key, "doc", 1024 + n)
            for n in range(OBJECTS_PER_ORG)
        ]
    return records, objects


class _RecordedCloudTrail:
    """Answers LookupEvents from a list of recorded-shape events, 50 a page."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._events = events

    def lookup_events(self, **request: Any) -> dict[str, Any]:
        start = int(request.get("NextToken") or 0)
        page: dict[str, Any] = {"Events": self._events[start : start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(self._events):
            page["NextToken"] = str(start + PAGE_SIZE)
        return page


def _audit(count: int) -> tuple[int, float, int]:
    key = f"{SHARED[:-12]}000000000001"
    events = [
        {
            "EventId": str(n),
            "EventName": "Decrypt",
            "CloudTrailEvent": json.dumps(
                {
                    "eventID": str(n),
                    "eventName": "Decrypt",
                    "eventSource": "kms.amazonaws.com",
                    "requestParameters": {
                        "keyId": key,
                        "encryptionContext": {"OrganizationId": "acme", "DataType": "doc"},
                    },
                    "resources": [{"type": "AWS::KMS::Key", "ARN": key}],
                }
            ),
        }
        for n in range(count)
    ]
    now = [0.0]
    pacer = Pacer(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    end = datetime.now(UTC)
    usage = key_usage(
        "acme", _RecordedCloudTrail(events), [key], end - timedelta(days=30), end, pacer
    )
    calls = pacer.calls
    peak = max((sum(1 for t in calls if start <= t < start + 1.0) for start in calls), default=0)
    return usage.requests, float(peak), usage.by_event["Decrypt"]


if __name__ == "__main__":
    started = time.perf_counter()
    for figure in run().figures:
        print(figure.label, figure.value, figure.result)
    print(f"{time.perf_counter() - started:.1f} s")
