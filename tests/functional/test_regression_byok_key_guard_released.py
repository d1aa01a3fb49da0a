"""A customer's key lost its one-organization reservation while an organization still used it.

What was wrong: the registry reserves a customer key for the organization that brings it, so no
second organization can be put on it. Two paths freed that reservation too early:

* a repeated ``byok-requested`` for the same key (an SQS redelivery, or a customer sending it
  twice) while the first move was running was refused with "already being migrated" and then
  freed the reservation the running move depended on;
* a BYOK move that failed after its dual phase freed the reservation although the organization
  keeps encrypting under the customer's key (the failed workflow leaves it on every key it had,
  target included).

Either way another organization could then reserve the key, and two organizations ended up on
one customer key, which BYOK's check 3 exists to prevent.

Severity: medium (isolation is still held by the customer's key policy, but the platform's own
guarantee is lost, silently).

Fix: a reservation is freed only when the organization neither uses the key nor is moving onto
it, and a failed workflow frees it only if that execution held the organization's lock.
"""

from typing import Any

import pytest

from orgkms.checkpoint import MigrationRefused
from orgkms.customer_keys import ByokRejected
from orgkms.lifecycle import customer_key_service
from orgkms.migration import MigrationService
from tests.functional.test_customer_keys import customer_key


def test_a_repeated_request_during_the_move_keeps_the_reservation(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org_id = create_org()
    key = customer_key(stack, org_id)
    starts: list[str] = []

    def start(_request: Any) -> str:
        if starts:
            raise MigrationRefused(f"organization {org_id!r} is already being migrated by x")
        starts.append("first")
        return "arn:aws:states:us-east-1:123456789012:execution:orgkms-migration:first"

    service = customer_key_service(platform, platform.publisher, start)
    service.request(org_id, key)
    with pytest.raises(ByokRejected):
        service.request(org_id, key)

    assert platform.registry.guard_key(key, new_org("other")) == org_id


def test_a_failed_move_that_left_the_org_on_the_key_keeps_the_reservation(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org_id = create_org()
    old_key = platform.lookup(org_id).encrypt_key_arn
    key = customer_key(stack, org_id)
    customer_key_service(platform).accept_key(platform.lookup(org_id), key)
    execution = "arn:aws:states:us-east-1:123456789012:execution:orgkms-migration:failed"
    checkpoint = platform.checkpoints.begin(org_id, execution)
    checkpoint.target_key_arn, checkpoint.source_key_arns = key, [old_key]
    checkpoint.status = "REENCRYPTING"
    platform.checkpoints.save(checkpoint)
    platform.registry.set_keys(org_id, key, [old_key, key])  # the dual phase
    state = {"organizationId": org_id, "execution": execution, "purpose": "byok"}

    MigrationService.from_platform(platform).fail(
        execution, {**state, "targetKeyArn": key}, {"Error": "X", "Cause": "page failed"}
    )

    assert platform.lookup(org_id).encrypt_key_arn == key
    assert platform.registry.guard_key(key, new_org("other")) == org_id


def test_a_failed_execution_that_never_held_the_lock_keeps_the_reservation(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    """Two starts raced; the loser fails at its lock while the winner moves the org."""
    org_id = create_org()
    key = customer_key(stack, org_id)
    customer_key_service(platform).accept_key(platform.lookup(org_id), key)
    platform.checkpoints.begin(org_id, "arn:aws:states:us-east-1:123456789012:execution:m:winner")
    loser = "arn:aws:states:us-east-1:123456789012:execution:m:loser"
    state = {"organizationId": org_id, "execution": loser, "purpose": "byok", "targetKeyArn": key}

    MigrationService.from_platform(platform).fail(
        loser, state, {"Error": "MigrationRefused", "Cause": "migration lock taken"}
    )

    assert platform.registry.guard_key(key, new_org("other")) == org_id
