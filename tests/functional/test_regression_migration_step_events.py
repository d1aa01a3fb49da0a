"""Found by the bad-input stress corpus: what the migration function says about a bad event."""

import json
from typing import Any

import pytest


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "unknown migration step 'None'"),
        ({"action": "explode", "execution": "x"}, "unknown migration step 'explode'"),
        ({"action": "prepare"}, "migration step prepare: no execution id"),
        ({"action": "switch", "execution": "e", "state": "text"}, "state must be a JSON object"),
        ([], "must be a JSON object"),
        ({"action": ["x"], "execution": 1}, "unknown migration step"),
        ({"action": "switch", "execution": "e", "state": []}, "state has no organizationId"),
    ],
)
def test_a_malformed_step_event_fails_with_a_clear_error(
    stack: Any, event: Any, message: str
) -> None:
    """Fixed (low): the step function answered a malformed event with KeyError 'action',
    AttributeError or TypeError from deep inside, naming neither the step nor the problem.

    Fix: the handler checks the event's shape first and raises InvalidEvent saying what is
    wrong (unknown step, missing execution id, state not an object).
    """
    result, failed = stack.runtime.invoke(stack.outputs["MigrationFunctionName"], json.dumps(event))

    assert failed
    assert result["errorType"] == "InvalidEvent"
    assert message in result["errorMessage"]
