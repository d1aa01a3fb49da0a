"""Every control-plane event type delivered three times, two of them at once: one end state.

One row per event in ``EVENT_CASES``: how to prepare an org for it, a valid detail, and the end
state that must come out the same whether the event arrived once or three times (once through
the bus, twice at the same moment as two Lambda containers would take it). A new event type is
one more row; a test fails while a detail-type of the contract has no row.
"""

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from orgkms.lifecycle import ControlPlaneConsumer
from orgkms.models import CONTROL_PLANE_EVENTS, control_plane_entry
from tests.functional.test_bad_input import sqs_event
from tests.functional.test_org_created import org_aliases, org_keys
from tests.stress.conftest import CANARY
from tests.unit.test_events import body
from tests.workflow.conftest import workflow  # noqa: F401 - the fixture


def created_state(stack: Any, platform: Any, org: str) -> tuple[Any, ...]:
    record = platform.registry.get(org)
    return (record.status, record.key_mode, len(org_keys(stack, org)), len(org_aliases(stack, org)))


def migrated_state(stack: Any, platform: Any, org: str) -> tuple[Any, ...]:
    sfn, machine = stack.client("stepfunctions"), stack.outputs["MigrationStateMachineArn"]
    deadline, runs = time.monotonic() + 90, []
    while time.monotonic() < deadline:
        runs = [
            e
            for e in sfn.list_executions(stateMachineArn=machine)["executions"]
            if e["name"].startswith(f"{org}-")
        ]
        if runs and all(e["status"] != "RUNNING" for e in runs):
            break
        time.sleep(0.05)
    record = platform.registry.get(org)
    out = io.BytesIO()
    platform.envelope.flush(org)
    platform.store.get(org, "kept.txt", out)
    succeeded = sum(e["status"] == "SUCCEEDED" for e in runs)
    return (
        record.key_mode,
        len(record.decrypt_key_arns),
        len(org_keys(stack, org)),
        succeeded,
        out.getvalue() == CANARY,
    )


def shared_org_with_data(create_org: Any, platform: Any) -> str:
    org = create_org(keyMode="shared")
    platform.store.put(org, "document", "kept.txt", io.BytesIO(CANARY))
    return org


@dataclass(frozen=True)
class EventCase:
    detail_type: str
    prepare: Callable[[Any, Any, Any, Any], str]  # (new_org, create_org, platform, stack) -> org
    detail: Callable[[str], dict[str, Any]]
    state: Callable[[Any, Any, str], tuple[Any, ...]]


EVENT_CASES = [
    EventCase(
        "org-created",
        lambda new_org, create_org, platform, stack: new_org("dup"),
        lambda org: {"organizationId": org},
        created_state,
    ),
    EventCase(
        "org-created",
        lambda new_org, create_org, platform, stack: new_org("dup-shared"),
        lambda org: {"organizationId": org, "keyMode": "shared"},
        created_state,
    ),
    EventCase(
        "migration-requested",
        lambda new_org, create_org, platform, stack: shared_org_with_data(create_org, platform),
        lambda org: {"organizationId": org, "cacheDrainSeconds": 0},
        migrated_state,
    ),
]


def org_with_customer_key(create_org: Any, platform: Any, stack: Any) -> str:
    from tests.functional.test_customer_keys import customer_key

    org = dedicated_org_with_data(create_org, platform)
    CUSTOMER_KEYS[org] = customer_key(stack, org)
    return org


def dedicated_org_with_data(create_org: Any, platform: Any) -> str:
    org = create_org()
    platform.store.put(org, "document", "kept.txt", io.BytesIO(CANARY))
    return org


def rotated_state(stack: Any, platform: Any, org: str) -> tuple[Any, ...]:
    record = platform.registry.get(org)
    rotations = stack.client("kms").list_key_rotations(KeyId=record.encrypt_key_arn)["Rotations"]
    return (record.last_rotation, len(rotations), record.rotation_period_days)


def erased_state(stack: Any, platform: Any, org: str) -> tuple[Any, ...]:
    record = platform.registry.get(org)
    kms = stack.client("kms")
    states = sorted(
        kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in org_keys(stack, org)
    )
    return (record.status, states, len(platform.store.list(org)))


def byok_state(stack: Any, platform: Any, org: str) -> tuple[Any, ...]:
    migrated = migrated_state(stack, platform, org)
    record = platform.registry.get(org)
    return (*migrated[:2], migrated[3:], record.encrypt_key_arn == CUSTOMER_KEYS.get(org))


CUSTOMER_KEYS: dict[str, str] = {}
EVENT_CASES += [
    EventCase(
        "rotate-due",
        lambda new_org, create_org, platform, stack: create_org(),
        lambda org: {"organizationId": org, "onDemand": True},
        rotated_state,
    ),
    EventCase(
        "key-compromised",
        lambda new_org, create_org, platform, stack: dedicated_org_with_data(create_org, platform),
        lambda org: {"organizationId": org, "reason": "duplicate-delivery test"},
        migrated_state,
    ),
    EventCase(
        "org-erasure-requested",
        lambda new_org, create_org, platform, stack: dedicated_org_with_data(create_org, platform),
        lambda org: {"organizationId": org},
        erased_state,
    ),
    EventCase(
        "byok-requested",
        lambda new_org, create_org, platform, stack: org_with_customer_key(
            create_org, platform, stack
        ),
        lambda org: {"organizationId": org, "keyArn": CUSTOMER_KEYS.get(org, "")},
        byok_state,
    ),
]


def test_every_event_type_of_the_contract_has_a_case() -> None:
    assert {case.detail_type for case in EVENT_CASES} == set(CONTROL_PLANE_EVENTS)


def deliver_three_times(
    stack: Any, platform: Any, detail_type: str, detail: dict[str, Any]
) -> None:
    """Once through the bus, then twice at the same moment to two consumers."""
    stack.put_events([control_plane_entry(detail_type, detail)])
    stack.deliver()
    raw = body(detail, detail_type)
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def container(message_id: str) -> None:
        consumer = ControlPlaneConsumer.from_platform(stack.platform())
        [record] = sqs_event({message_id: raw})["Records"]
        barrier.wait()
        try:
            consumer.handle_record(SQSRecord(record))
        except Exception as err:  # a refused duplicate is retried by SQS: fine here
            errors.append(type(err).__name__)

    threads = [threading.Thread(target=container, args=(f"dup-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: f"{c.detail_type}-{c.detail('x')}")
def test_three_deliveries_two_at_once_end_as_one(
    case: EventCase,
    workflow: Any,  # noqa: F811
    platform: Any,
    new_org: Any,
    create_org: Any,
    figures: Any,
) -> None:
    once, thrice = (case.prepare(new_org, create_org, platform, workflow) for _ in range(2))

    workflow.put_events([control_plane_entry(case.detail_type, case.detail(once))])
    workflow.deliver()
    deliver_three_times(workflow, platform, case.detail_type, case.detail(thrice))

    expected, got = case.state(workflow, platform, once), case.state(workflow, platform, thrice)
    figures.counts.update(
        event=f"{case.detail_type} {json.dumps(case.detail('ORG'))}",
        deliveries=3,
        end_state_once=str(expected),
        end_state_three_times=str(got),
    )
    assert got == expected
