"""The re-key workflow's steps, one per invocation: ``{"action": ..., "state": {...}}``.

Called by the migration state machine only. Clients are built once per container; each action
returns the small state document the next step needs.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from orgkms.aws import Platform
from orgkms.errors import InvalidEvent
from orgkms.migration import MigrationService
from orgkms.observability import SERVICE

logger = Logger(service=SERVICE)
_service: MigrationService | None = None


def _get_service() -> MigrationService:
    global _service
    if _service is None:
        _service = MigrationService.from_platform(Platform.from_env())
    return _service


STEPS = ("prepare", "open_dual", "reencrypt_page", "validate_page", "switch", "fail")


def parse_step(event: Any) -> tuple[str, dict[str, Any], str]:
    """(action, state, execution) of a step event, or InvalidEvent saying what is wrong."""
    if not isinstance(event, dict):
        raise InvalidEvent("a migration step event must be a JSON object")
    action, state, execution = event.get("action"), event.get("state") or {}, event.get("execution")
    if not isinstance(action, str) or action not in STEPS:
        raise InvalidEvent(
            f"unknown migration step {str(action)[:40]!r}; one of {', '.join(STEPS)}"
        )
    if not isinstance(state, dict):
        raise InvalidEvent(f"migration step {action}: state must be a JSON object")
    if not isinstance(execution, str) or not execution:
        raise InvalidEvent(f"migration step {action}: no execution id")
    if action not in ("prepare", "fail") and not isinstance(state.get("organizationId"), str):
        raise InvalidEvent(f"migration step {action}: state has no organizationId")
    return action, state, execution


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action, state, execution = parse_step(event)
    service = _get_service()
    logger.append_keys(org_id=state.get("organizationId"), execution=execution, action=action)
    if action == "prepare":
        return service.prepare(execution, state)
    if action == "fail":
        return service.fail(execution, state, event.get("error") or {})
    step = {
        "open_dual": service.open_dual,
        "reencrypt_page": service.reencrypt_page,
        "validate_page": service.validate_page,
        "switch": service.switch,
    }[action]
    return step({**state, "execution": execution})
