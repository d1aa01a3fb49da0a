"""Found by the fault-injection stress tier: a second key for one organization."""

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from orgkms.keys import CLAIM_LEASE_SECONDS
from orgkms.models import OrgCreated
from tests.functional.test_org_created import org_aliases, org_keys
from tests.functional.test_provisioning import Clock, service


def test_a_key_whose_creation_answer_was_lost_is_adopted_after_two_failed_retries(
    stack: Any, new_org: Any
) -> None:
    """Fixed (high): the registry remembered only the latest claim token.

    A key is adopted after a crash only if it carries the claim token the registry holds. Each
    new delivery overwrote that token with its own. So: delivery 1 creates key K1 (tagged with
    token T1) and its answer is lost; delivery 2 claims with T2 and fails before recording K1
    (a throttled DynamoDB write); delivery 3 looks for keys tagged T2, finds none and creates K2.
    The organization ends with two keys, one of them orphaned.

    Fix: the registry accumulates every claim token of an unfinished creation (``claimTokens``)
    and a retry adopts a key carrying any of them.
    """
    org = new_org()
    clock = Clock()
    kms, ddb = stack.client("kms"), stack.client("dynamodb")
    svc = service(stack, clock, kms)
    svc._registry._ddb = ddb
    lose = {"CreateKey": 1}

    def answer_lost(model: Any, **_: Any) -> None:
        if lose.get(model.name):
            lose[model.name] -= 1
            raise ReadTimeoutError(endpoint_url="https://kms.emulated")

    updates = {"n": 0}

    def throttle_second_delivery_record(**_: Any) -> Any:
        updates["n"] += 1
        if updates["n"] == 4:  # 1 claim, 2 release, 3 claim, 4 record_pending_key
            raise RuntimeError("ProvisionedThroughputExceeded")
        return None

    kms.meta.events.register("after-call.kms.CreateKey", answer_lost)
    ddb.meta.events.register("before-call.dynamodb.UpdateItem", throttle_second_delivery_record)

    with pytest.raises(ReadTimeoutError):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    with pytest.raises(RuntimeError):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    clock.now += CLAIM_LEASE_SECONDS + 1
    record = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert org_keys(stack, org) == [record.encrypt_key_arn]
    assert len(org_aliases(stack, org)) == 1
