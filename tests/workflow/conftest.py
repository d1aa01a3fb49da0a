"""The re-key workflow, executed by moto's Step Functions interpreter with in-process Lambdas."""

from typing import Any

import pytest

PAGE_SIZE = 3
MULTIPART_THRESHOLD = 6 * 1024 * 1024
PART_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def workflow(stack: Any) -> Any:
    """The stack with small migration pages and a low multipart-copy threshold."""
    stack.runtime.configure(
        stack.outputs["MigrationFunctionName"],
        ORGKMS_MIGRATION_PAGE_SIZE=str(PAGE_SIZE),
        ORGKMS_MIGRATION_MULTIPART_COPY_THRESHOLD=str(MULTIPART_THRESHOLD),
        ORGKMS_MIGRATION_COPY_PART_BYTES=str(PART_BYTES),
        ORGKMS_MIGRATION_WORKERS="4",
        # Requests that carry no cacheDrainSeconds (BYOK, key compromise) wait the cache's max
        # age; keep it under a second here.
        ORGKMS_CACHE_MAX_AGE_SECONDS="0.5",
    )
    return stack


def migrate(stack: Any, org_id: str, timeout: float = 120, **detail: Any) -> dict[str, Any]:
    """Request a migration through the control plane and wait for its execution to end."""
    request = {"organizationId": org_id, "cacheDrainSeconds": 0, **detail}
    return send_and_wait(stack, "migration-requested", request, timeout)


def send_and_wait(
    stack: Any, detail_type: str, detail: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    """Send a control-plane event that starts a re-key and wait for that execution to end."""
    from orgkms.models import control_plane_entry

    before = stack.executions()
    stack.put_events([control_plane_entry(detail_type, detail)])
    stack.deliver()
    return dict(stack.wait_for_execution(before, timeout))
