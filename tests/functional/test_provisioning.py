"""Exactly one key and one alias per org, whatever the deliveries: concurrent, repeated, crashed."""

import threading
from typing import Any

import pytest

from orgkms.keys import CLAIM_LEASE_SECONDS, CreationInProgress, OrgKeyService
from orgkms.models import OrgCreated
from orgkms.registry import OrgRegistry
from tests.functional.test_org_created import org_aliases, org_keys


class Crash(BaseException):
    """The process dies here: nothing after this line runs, no cleanup handler sees it."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def service(stack: Any, clock: Clock | None = None, kms: Any = None) -> OrgKeyService:
    outputs = stack.outputs
    registry = OrgRegistry(
        outputs["OrgRegistryTableName"], stack.client("dynamodb"), clock=clock or Clock()
    )
    kms = kms or stack.client("kms")
    return OrgKeyService(
        registry=registry,
        kms_for_region=lambda region: kms,
        default_region="us-east-1",
        partition="aws",
        account_id="123456789012",
        data_access_role_arn=outputs["OrgDataAccessRoleArn"],
        key_admin_role_arn=outputs["KeyAdminRoleArn"],
        shared_key_arn=outputs["SharedPlatformKeyArn"],
        stack_name="orgkms",
    )


def fail_once(kms: Any, operation: str, error: BaseException) -> None:
    state = {"armed": True}

    def hook(**_: Any) -> None:
        if state["armed"]:
            state["armed"] = False
            raise error

    kms.meta.events.register(f"before-call.kms.{operation}", hook)


def test_a_second_delivery_during_creation_is_told_to_retry_and_then_sees_the_same_key(
    stack: Any, new_org: Any
) -> None:
    org = new_org()
    kms = stack.client("kms")
    svc = service(stack, kms=kms)
    seen: dict[str, Any] = {}

    def second_delivery(**_: Any) -> None:
        if "second" not in seen:
            seen["second"] = "ran"
            with pytest.raises(CreationInProgress):
                svc.ensure_org_key(OrgCreated(organizationId=org))

    kms.meta.events.register("before-call.kms.CreateAlias", second_delivery)
    first = svc.ensure_org_key(OrgCreated(organizationId=org))
    retried = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert seen == {"second": "ran"}
    assert retried.encrypt_key_arn == first.encrypt_key_arn
    assert org_keys(stack, org) == [first.encrypt_key_arn]


def test_many_concurrent_deliveries_end_with_one_key(stack: Any, new_org: Any) -> None:
    org = new_org()
    svc = service(stack)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def deliver() -> None:
        barrier.wait()
        try:
            outcomes.append(svc.ensure_org_key(OrgCreated(organizationId=org)).encrypt_key_arn)
        except CreationInProgress:
            outcomes.append("retry")

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = svc.ensure_org_key(OrgCreated(organizationId=org)).encrypt_key_arn

    assert {o for o in outcomes if o != "retry"} <= {final}
    assert org_keys(stack, org) == [final]
    assert len(org_aliases(stack, org)) == 1


def test_failure_between_create_key_and_create_alias_is_retried_onto_the_same_key(
    stack: Any, new_org: Any
) -> None:
    org = new_org()
    kms = stack.client("kms")
    fail_once(kms, "CreateAlias", RuntimeError("throttled"))
    svc = service(stack, kms=kms)

    with pytest.raises(RuntimeError):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    [orphan] = org_keys(stack, org)
    record = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert record.encrypt_key_arn == orphan
    assert org_keys(stack, org) == [orphan] and len(org_aliases(stack, org)) == 1


def test_crash_after_create_key_is_taken_over_once_the_lease_expires(
    stack: Any, new_org: Any
) -> None:
    org = new_org()
    clock = Clock()
    kms = stack.client("kms")
    fail_once(kms, "CreateAlias", Crash())
    svc = service(stack, clock, kms)

    with pytest.raises(Crash):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    with pytest.raises(CreationInProgress):  # the dead attempt's lease still holds
        svc.ensure_org_key(OrgCreated(organizationId=org))
    clock.now += CLAIM_LEASE_SECONDS + 1
    record = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert org_keys(stack, org) == [record.encrypt_key_arn]
    assert len(org_aliases(stack, org)) == 1


def test_crash_before_the_key_was_recorded_adopts_the_tagged_key(stack: Any, new_org: Any) -> None:
    org = new_org()
    clock = Clock()
    ddb = stack.client("dynamodb")
    svc = service(stack, clock)
    svc._registry._ddb = ddb
    calls = {"n": 0}

    def crash_on_second_update(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # 1: claim, 2: record_pending_key
            raise Crash()

    ddb.meta.events.register("before-call.dynamodb.UpdateItem", crash_on_second_update)
    with pytest.raises(Crash):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    [orphan] = org_keys(stack, org)
    clock.now += CLAIM_LEASE_SECONDS + 1
    record = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert record.encrypt_key_arn == orphan
    assert org_keys(stack, org) == [orphan] and len(org_aliases(stack, org)) == 1


def test_a_repeated_event_with_another_mode_keeps_the_registered_one(
    stack: Any, new_org: Any
) -> None:
    org = new_org()
    svc = service(stack)
    first = svc.ensure_org_key(OrgCreated(organizationId=org))

    again = svc.ensure_org_key(OrgCreated(organizationId=org, keyMode="shared"))

    assert again.key_mode == "dedicated" and again.encrypt_key_arn == first.encrypt_key_arn
