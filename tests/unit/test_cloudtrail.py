"""CloudTrail LookupEvents for an org's keys, through botocore's Stubber with events shaped as
CloudTrail records them (moto has no LookupEvents)."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from orgkms.cloudtrail import (
    PAGE_SIZE,
    AuditRangeRefused,
    Pacer,
    audit_range,
    key_usage,
)

ACCOUNT = "123456789012"
ORG_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SHARED_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
END = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
START = END - timedelta(days=30)


def recorded_event(
    name: str,
    key_arn: str,
    org: str | None = "acme",
    error: str | None = None,
) -> dict[str, Any]:
    """One LookupEvents result as CloudTrail returns it for a KMS call."""
    event_id = str(uuid.uuid4())
    parameters: dict[str, Any] = {"keyId": key_arn, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if org is not None:
        parameters["encryptionContext"] = {"OrganizationId": org, "DataType": "invoice"}
    if name == "GenerateDataKey":
        parameters["keySpec"] = "AES_256"
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/orgkms-OrgDataAccessRole/worker",
            "accountId": ACCOUNT,
        },
        "eventTime": "2026-12-01T10:00:00Z",
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.0.12",
        "userAgent": "aws-sdk-python",
        "requestParameters": parameters,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = "User is not authorized to perform: kms:Decrypt"
    return {
        "EventId": event_id,
        "EventName": name,
        "ReadOnly": "true",
        "EventTime": datetime(2026, 12, 1, 10, tzinfo=UTC),
        "EventSource": "kms.amazonaws.com",
        "Username": "worker",
        "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn}],
        "CloudTrailEvent": json.dumps(record),
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def cloudtrail() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudtrail", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def stub_pages(stubber: Stubber, key_arn: str, events: list[dict[str, Any]]) -> None:
    pages = [events[i : i + PAGE_SIZE] for i in range(0, len(events), PAGE_SIZE)] or [[]]
    for number, page in enumerate(pages):
        expected: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
            "StartTime": START,
            "EndTime": END,
            "MaxResults": PAGE_SIZE,
        }
        if number:
            expected["NextToken"] = f"token-{number}"
        response: dict[str, Any] = {"Events": page}
        if number + 1 < len(pages):
            response["NextToken"] = f"token-{number + 1}"
        stubber.add_response("lookup_events", response, expected)


def test_counts_data_events_errors_and_access_denied(cloudtrail: tuple[Any, Stubber]) -> None:
    client, stubber = cloudtrail
    events = [recorded_event("Decrypt", ORG_KEY) for _ in range(3)]
    events += [recorded_event("GenerateDataKey", ORG_KEY), recorded_event("Encrypt", ORG_KEY)]
    events += [recorded_event("Decrypt", ORG_KEY, error="AccessDenied")]
    events += [recorded_event("DisableKey", ORG_KEY, org=None)]
    stub_pages(stubber, ORG_KEY, events)

    usage = key_usage("acme", client, [ORG_KEY], START, END, Pacer(clock=FakeClock()))

    assert usage.as_dict() == {
        "Encrypt": 1,
        "Decrypt": 4,
        "GenerateDataKey": 1,
        "otherEvents": 1,
        "errors": 1,
        "accessDenied": 1,
        "otherOrganizationsEventsSkipped": 0,
        "lookupRequests": 1,
    }


def test_shared_key_events_of_other_orgs_are_not_counted(cloudtrail: tuple[Any, Stubber]) -> None:
    client, stubber = cloudtrail
    stub_pages(stubber, ORG_KEY, [recorded_event("Decrypt", ORG_KEY)])
    stub_pages(
        stubber,
        SHARED_KEY,
        [
            recorded_event("Decrypt", SHARED_KEY, org="acme"),
            recorded_event("Decrypt", SHARED_KEY, org="globex"),
            recorded_event("GenerateDataKey", SHARED_KEY, org="initech"),
        ],
    )

    usage = key_usage("acme", client, [ORG_KEY, SHARED_KEY], START, END, Pacer(clock=FakeClock()))

    assert usage.by_event["Decrypt"] == 2 and usage.other_orgs == 2
    assert usage.requests == 2


def test_5000_events_are_read_page_by_page_within_two_requests_a_second(
    cloudtrail: tuple[Any, Stubber],
) -> None:
    client, stubber = cloudtrail
    events = [recorded_event("Decrypt", ORG_KEY) for _ in range(5000)]
    stub_pages(stubber, ORG_KEY, events)
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)

    usage = key_usage("acme", client, [ORG_KEY], START, END, pacer)

    assert usage.by_event["Decrypt"] == 5000 and usage.requests == 100
    gaps = [b - a for a, b in zip(pacer.calls, pacer.calls[1:], strict=False)]
    assert min(gaps) >= 0.5  # never more than 2 requests in any second
    assert clock.now == pytest.approx(99 * 0.5)


def test_a_throttled_lookup_is_one_clear_error(cloudtrail: tuple[Any, Stubber]) -> None:
    from orgkms.audit import AuditError

    client, stubber = cloudtrail
    stubber.add_client_error("lookup_events", "ThrottlingException", "Rate exceeded")

    with pytest.raises(AuditError, match=f"LookupEvents for {ORG_KEY} failed"):
        key_usage("acme", client, [ORG_KEY], START, END, Pacer(clock=FakeClock()))


@pytest.mark.parametrize(
    ("days", "end", "reason"),
    [
        (30, END + timedelta(days=1), "in the future"),
        (91, None, "keeps 90 days"),
        (0, None, "keeps 90 days"),
        (30, END - timedelta(days=80), "before the 90 days"),
    ],
)
def test_ranges_cloudtrail_cannot_answer_are_refused(
    days: int, end: datetime | None, reason: str
) -> None:
    with pytest.raises(AuditRangeRefused, match=reason):
        audit_range(days, end, now=END)


def test_a_valid_range_ends_now_by_default() -> None:
    assert audit_range(30, None, now=END) == (START, END)
