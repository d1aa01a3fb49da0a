"""Who used an organization's keys: CloudTrail's LookupEvents, paced, merged with the audit trail.

LookupEvents answers at most 2 requests per second per account and region, returns 50 events a
page and keeps 90 days of management events. The lookup here paces itself below that rate (a
:class:`Pacer` with an injected clock and sleep), so an org with thousands of events is read
without throttling. Events come from the org's key ARNs: the registry's and every key its audit
trail ever named (old keys too). On the shared key, only events whose encryption context names
the org are counted.

Cached operations never reach CloudTrail: a data key taken from the cache costs no KMS call. The
report therefore shows the library's own per-org counts (operations, cache hits) beside
CloudTrail's.
"""

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orgkms.audit import AuditError
from orgkms.policy import ORG_CONTEXT_KEY

LOOKUP_REQUESTS_PER_SECOND = 2.0
PAGE_SIZE = 50
RETENTION_DAYS = 90
CLOCK_SKEW = timedelta(minutes=5)
DATA_EVENTS = ("Encrypt", "Decrypt", "GenerateDataKey")


class AuditRangeRefused(AuditError):
    """An audit range CloudTrail cannot answer: in the future, or older than it keeps."""


class Pacer:
    """At most ``rate`` calls per second: :meth:`wait` sleeps until the next call may go."""

    def __init__(
        self,
        rate: float = LOOKUP_REQUESTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self.calls: list[float] = []

    def wait(self) -> None:
        delay = self._next - self._clock()
        if delay > 0:
            self._sleep(delay)
        now = self._clock()
        self._next = now + self._interval
        self.calls.append(now)


@dataclass
class KeyUsage:
    """CloudTrail's view of one org's keys over a range."""

    by_event: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    access_denied: int = 0
    other_orgs: int = 0  # events on a shared key naming another organization (not counted)
    requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: self.by_event.get(name, 0) for name in DATA_EVENTS},
            "otherEvents": sum(n for e, n in self.by_event.items() if e not in DATA_EVENTS),
            "errors": self.errors,
            "accessDenied": self.access_denied,
            "otherOrganizationsEventsSkipped": self.other_orgs,
            "lookupRequests": self.requests,
        }


def audit_range(days: int, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The (start, end) to look up; refuses what CloudTrail cannot answer."""
    end = end or now
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end > now + CLOCK_SKEW:
        raise AuditRangeRefused(f"the audit range ends in the future ({end.isoformat()})")
    if not 1 <= days <= RETENTION_DAYS:
        raise AuditRangeRefused(
            f"--days {days}: CloudTrail keeps {RETENTION_DAYS} days of events; ask for 1 to "
            f"{RETENTION_DAYS}"
        )
    start = end - timedelta(days=days)
    if start < now - timedelta(days=RETENTION_DAYS):
        raise AuditRangeRefused(
            f"the audit range starts {start.date()}, before the {RETENTION_DAYS} days CloudTrail "
            "keeps"
        )
    return start, end


def lookup_key_events(
    cloudtrail: Any, key_arn: str, start: datetime, end: datetime, pacer: Pacer
) -> Iterator[dict[str, Any]]:
    """Every CloudTrail event naming ``key_arn`` in the range, page by page, paced."""
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
            "StartTime": start,
            "EndTime": end,
            "MaxResults": PAGE_SIZE,
        }
        if token:
            request["NextToken"] = token
        pacer.wait()
        try:
            page = cloudtrail.lookup_events(**request)
        except (ClientError, BotoCoreError) as err:
            raise AuditError(f"CloudTrail LookupEvents for {key_arn} failed: {err}") from err
        for event in page.get("Events", []):
            yield _parsed(event)
        token = page.get("NextToken")
        if not token:
            return


def key_usage(
    org_id: str,
    cloudtrail: Any,
    key_arns: Iterable[str],
    start: datetime,
    end: datetime,
    pacer: Pacer | None = None,
) -> KeyUsage:
    """Counts of the org's key events over the range, each event counted once."""
    pacer = pacer or Pacer()
    usage, seen = KeyUsage(), set()
    for arn in dict.fromkeys(key_arns):
        for event in lookup_key_events(cloudtrail, arn, start, end, pacer):
            event_id = event.get("eventID") or id(event)
            if event_id in seen:
                continue
            seen.add(event_id)
            _count(org_id, event, usage)
    usage.requests = len(pacer.calls)
    return usage


def _count(org_id: str, event: dict[str, Any], usage: KeyUsage) -> None:
    context = (event.get("requestParameters") or {}).get("encryptionContext") or {}
    named = context.get(ORG_CONTEXT_KEY)
    if named is not None and named != org_id:
        usage.other_orgs += 1
        return
    usage.by_event[str(event.get("eventName", "?"))] += 1
    code = event.get("errorCode")
    if code:
        usage.errors += 1
        if "AccessDenied" in str(code):
            usage.access_denied += 1


def _parsed(event: dict[str, Any]) -> dict[str, Any]:
    """The CloudTrailEvent JSON of a LookupEvents result (its outer fields as a fallback)."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    detail.setdefault("eventName", event.get("EventName", "?"))
    detail.setdefault("eventID", event.get("EventId"))
    return dict(detail)


def audit_report(
    org_id: str,
    trail: Any,
    cloudtrail: Any,
    key_arns: list[str],
    start: datetime,
    end: datetime,
    library: Any = None,
    pacer: Pacer | None = None,
) -> dict[str, Any]:
    """The org's audit trail entries in range, CloudTrail's counts and the library's counts."""
    entries = [
        e.as_dict() for e in trail.entries(org_id) if start <= datetime.fromisoformat(e.at) <= end
    ]
    usage = key_usage(org_id, cloudtrail, key_arns, start, end, pacer)
    return {
        "organizationId": org_id,
        "start": start.isoformat(timespec="seconds"),
        "end": end.isoformat(timespec="seconds"),
        "keyArns": key_arns,
        "auditTrail": entries,
        "cloudTrail": usage.as_dict(),
        "library": {
            "operations": getattr(library, "operations", 0),
            "cacheHits": getattr(library, "cache_hits", 0),
            "kmsCalls": getattr(library, "kms_calls", 0),
            "refusals": getattr(library, "refusals", 0),
            "scope": "this process only",
        },
        "note": (
            "operations served from the data-key cache make no KMS call and never reach "
            "CloudTrail; CloudTrail shows KMS calls, the library's counts show operations"
        ),
    }
