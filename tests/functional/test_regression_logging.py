"""Found in review: which organization the lifecycle function's log lines name."""

import io
import json
import logging
from typing import Any

from tests.functional.test_bad_input import sqs_event
from tests.unit.test_events import body


def test_a_rejected_message_is_not_logged_under_the_previous_messages_org(
    stack: Any, new_org: Any
) -> None:
    """Fixed (low): log keys leak from one SQS record to the next within a batch.

    ControlPlaneConsumer calls logger.append_keys(detail_type=..., org_id=...) per record, and
    nothing removes them before the next record (inject_lambda_context(clear_state=True) only
    clears per invocation). In a batch [valid org-created for X, malformed message], the
    "control-plane event rejected" line of the malformed message carries org_id=X: an audit or
    alert keyed on org_id blames organization X for an event it never sent, and a later
    provisioning failure can be attributed to the wrong org the same way.

    Fix: logger.remove_keys(["org_id", "detail_type"]) at the start of handle_record (or
    use a per-record context: ``with logger.append_context_keys(...)``).
    """
    function = stack.outputs["OrgLifecycleFunctionName"]
    stack.runtime.invoke(function, sqs_event({"warm": body({"organizationId": new_org()})}))
    org_logger = logging.getLogger("orgkms")
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(org_logger.handlers[0].formatter)
    org_logger.addHandler(handler)
    good = new_org()
    try:
        stack.runtime.invoke(
            function,
            sqs_event(
                {
                    "good": body({"organizationId": good}),
                    "bad": body({"organizationId": "Bad Org!"}),
                }
            ),
        )
    finally:
        org_logger.removeHandler(handler)

    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    [rejected] = [line for line in lines if line.get("message") == "control-plane event rejected"]
    assert rejected.get("org_id") != good
