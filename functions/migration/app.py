"""The re-key workflow's steps, one per invocation: ``{"action": ..., "state": {...}}``.

Called by the migration state machine only. Clients are built once per container; each action
returns the small state document the next step needs.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from orgkms.aws import Platform
from orgkms.migration import MigrationService
from orgkms.observability import SERVICE

logger = Logger(service=SERVICE)
_service: MigrationService | None = None


def _get_service() -> MigrationService:
    global _service
    if _service is None:
        _service = MigrationService.from_platform(Platform.from_env())
    return _service


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = _get_service()
    action, state, execution = event["action"], event.get("state") or {}, event["execution"]
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
