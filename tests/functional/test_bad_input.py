"""Bad control-plane messages: each fails alone, ends in the DLQ, and the batch goes on."""

import json
from typing import Any

import pytest

from tests.unit.test_events import body

BAD_BODIES = {
    "not-json": "{this is not json",
    "unknown-type": body({"organizationId": "acme"}, "org-exploded"),
    "missing-org": body({"region": "us-east-1"}),
    "invalid-org": body({"organizationId": "Acme Corp!"}),
    "oversize": body({"organizationId": "acme", "notes": "x" * 20_000}),
    "deep": json.dumps(
        {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
    ),
}


def sqs_event(bodies: dict[str, str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"rh-{message_id}",
                "body": raw,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "1",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orgkms-org-created",
                "awsRegion": "us-east-1",
            }
            for message_id, raw in bodies.items()
        ]
    }


def test_handler_reports_exactly_the_bad_messages_and_processes_the_rest(
    stack: Any, platform: Any, new_org: Any
) -> None:
    good = new_org()
    bodies = {**BAD_BODIES, "good": body({"organizationId": good})}

    result, crashed = stack.runtime.invoke(
        stack.outputs["OrgLifecycleFunctionName"], sqs_event(bodies)
    )

    assert not crashed
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == set(BAD_BODIES)
    assert platform.registry.get(good).ready


def test_a_batch_of_only_bad_messages_is_answered_per_message_not_as_a_crash(stack: Any) -> None:
    result, crashed = stack.runtime.invoke(
        stack.outputs["OrgLifecycleFunctionName"], sqs_event({"a": "nope", "b": "[]"})
    )

    assert not crashed
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["a", "b"]


def test_bad_messages_land_in_the_dlq_with_their_reason_logged(
    stack: Any, platform: Any, new_org: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sqs = stack.client("sqs")
    queue, dlq = stack.outputs["OrgCreatedQueueUrl"], stack.outputs["OrgCreatedDLQUrl"]
    good = new_org()
    stack.drain(dlq)
    for raw in [BAD_BODIES["not-json"], BAD_BODIES["invalid-org"], body({"organizationId": good})]:
        sqs.send_message(QueueUrl=queue, MessageBody=raw)

    stack.deliver()

    assert platform.registry.get(good).ready
    dead = stack.drain(dlq)
    assert sorted(dead) == sorted([BAD_BODIES["not-json"], BAD_BODIES["invalid-org"]])
    assert _visible(sqs, queue) == 0
    logged = [r for r in caplog.records if r.getMessage() == "control-plane event rejected"]
    reasons = {r.__dict__["reason"] for r in logged}
    assert "message body is not JSON" in reasons
    assert any(r.startswith("invalid org-created detail: organizationId") for r in reasons)
    assert all("Acme Corp!" not in str(r.__dict__) for r in logged)


def test_a_rejection_event_goes_back_to_the_bus_once(stack: Any, new_org: Any) -> None:
    rejections = stack.listen(new_org("rejections"), ["event-rejected"])
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.outputs["OrgCreatedQueueUrl"], MessageBody="garbage")

    stack.deliver()

    rejected = [r for r in rejections() if r["reason"] == "message body is not JSON"]
    assert len(rejected) == 1
    assert rejected[0]["messageId"]


def _visible(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])
