"""Found by the fault-injection stress tier: dead-lettered events without a logged reason."""

from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ReadTimeoutError

from orgkms.lifecycle import ControlPlaneConsumer
from orgkms.observability import SERVICE
from tests.functional.test_bad_input import sqs_event
from tests.unit.test_events import body


class _TimingOutKeys:
    def refuse_if_erased(self, org_id: str) -> None:
        return None  # an org that was never erased: nothing read

    def ensure_org_key(self, request: Any) -> Any:
        raise ReadTimeoutError(endpoint_url="https://kms.us-east-1.amazonaws.com/")


def test_an_untranslated_aws_failure_is_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fixed (medium): only orgkms's own errors were logged before a retry.

    ControlPlaneConsumer.handle_record logged "control-plane event failed" for OrgKmsError
    alone. A botocore timeout, a ClientError a step did not translate (DescribeKey of the alias,
    ListKeys while adopting a key) or a Powertools idempotency error (a record still in
    progress after a crash, a throttled idempotency table) failed the message silently: after
    MaxReceiveCount deliveries it sat in the DLQ with no line saying why.

    Fix: every exception of a record is logged with its type and message, then re-raised.
    """
    Logger(service=SERVICE)  # the handler's logger, parent of the library's
    consumer = ControlPlaneConsumer(_TimingOutKeys(), publisher=None)  # type: ignore[arg-type]
    [raw] = sqs_event({"m-1": body({"organizationId": "acme-timeout"})})["Records"]

    with pytest.raises(ReadTimeoutError):
        consumer.handle_record(SQSRecord(raw))

    [failed] = [
        r for r in caplog.records if r.getMessage().startswith("control-plane event failed")
    ]
    assert failed.__dict__["message_id"] == "m-1"
    assert failed.__dict__["reason"].startswith("ReadTimeoutError: Read timeout")
