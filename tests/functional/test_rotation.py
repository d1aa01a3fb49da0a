"""Rotation: the daily scanner reads due orgs only, each org's rotation runs on its own message,
platform keys are rotated or confirmed, customers' keys are only reported."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orgkms.models import control_plane_entry
from orgkms.registry import OrgRegistry
from tests.functional.test_customer_keys import customer_key, put_on_customer_key


@pytest.fixture
def rotated(stack: Any, new_org: Any) -> Any:
    return stack.listen(new_org("rotations"), ["key-rotated"])


def rotate(stack: Any, org_id: str, **detail: Any) -> None:
    stack.put_events([control_plane_entry("rotate-due", {"organizationId": org_id, **detail})])
    stack.deliver()


def test_org_created_schedules_rotation_with_the_orgs_period(
    platform: Any, create_org: Any
) -> None:
    org_id = create_org(rotationPeriodDays=180)
    record = platform.lookup(org_id)
    assert record.rotation_period_days == 180
    assert abs(record.next_rotation_at - (time.time() + 180 * 86400)) < 600


def test_rotation_periods_outside_kms_limits_are_rejected(stack: Any, new_org: Any) -> None:
    from orgkms.lifecycle import parse_control_plane_message

    for days in (89, 2561):
        body = {
            "version": "0",
            "id": "1",
            "detail-type": "org-created",
            "source": "saas.control-plane",
            "account": "123456789012",
            "time": "2026-12-04T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"organizationId": new_org(), "rotationPeriodDays": days},
        }
        with pytest.raises(Exception, match="rotationPeriodDays"):
            parse_control_plane_message(json.dumps(body))


def test_the_scanner_queues_due_orgs_only_and_never_scans_the_registry(
    stack: Any, platform: Any, create_org: Any, rotated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    due, later = create_org(), create_org()
    platform.registry.set_attributes(due, {"nextRotationAt": int(time.time()) - 60})

    def no_scans(_self: Any) -> Any:
        raise AssertionError("the rotation scanner scanned the whole registry")

    monkeypatch.setattr(OrgRegistry, "scan", no_scans)
    answer = stack.invoke("RotationScannerFunctionName")
    stack.deliver()

    assert answer["queued"] >= 1
    events = {e["organizationId"]: e for e in rotated()}
    assert events[due]["action"] == "automatic-confirmed"
    assert later not in events
    record = platform.lookup(due)
    assert record.last_rotation == "automatic-confirmed"
    assert record.next_rotation_at > time.time() + 300 * 86400


def test_a_repeated_scanner_message_does_not_rotate_twice(
    stack: Any, platform: Any, create_org: Any, rotated: Any
) -> None:
    org_id = create_org()
    platform.registry.set_attributes(org_id, {"nextRotationAt": int(time.time()) - 60})
    stack.invoke("RotationScannerFunctionName")
    stack.invoke("RotationScannerFunctionName")  # before the first batch was handled
    stack.deliver()

    assert [e["organizationId"] for e in rotated()].count(org_id) == 1


def test_on_demand_rotation_respects_the_kms_limit(
    stack: Any, platform: Any, create_org: Any, rotated: Any
) -> None:
    org_id = create_org()
    key = platform.lookup(org_id).encrypt_key_arn
    old = platform.envelope.encrypt(org_id, "doc", b"written before rotation")

    for i in range(11):  # eleven distinct requests, each sent after the previous rotation
        entry = control_plane_entry("rotate-due", {"organizationId": org_id, "onDemand": True})
        stack.put_events([{**entry, "Time": datetime.now(UTC) + timedelta(seconds=i + 1)}])
        stack.deliver()

    actions = [e["action"] for e in rotated() if e["organizationId"] == org_id]
    assert actions == ["rotated-on-demand"] * 10 + ["automatic-confirmed"]
    rotations = stack.client("kms").list_key_rotations(KeyId=key)["Rotations"]
    assert sum(r["RotationType"] == "ON_DEMAND" for r in rotations) == 10
    assert platform.envelope.decrypt(org_id, old, "doc") == b"written before rotation"


def test_rotation_says_it_does_not_re_encrypt(stack: Any, create_org: Any, rotated: Any) -> None:
    org_id = create_org()
    rotate(stack, org_id, onDemand=True)
    (event,) = [e for e in rotated() if e["organizationId"] == org_id]
    assert "--rekey" in event["note"]


def test_a_customers_key_is_reported_never_rotated(
    stack: Any, platform: Any, create_org: Any, rotated: Any
) -> None:
    org_id = create_org()
    key = customer_key(stack, org_id)
    put_on_customer_key(platform, org_id, key)
    stack.customer_kms().enable_key_rotation(KeyId=key)

    rotate(stack, org_id, onDemand=True)

    (event,) = [e for e in rotated() if e["organizationId"] == org_id]
    assert (event["action"], event["rotationEnabled"]) == ("customer-reported", True)
    assert stack.customer_kms().list_key_rotations(KeyId=key)["Rotations"] == []


def test_shared_mode_orgs_are_not_rotated_on_their_own(
    stack: Any, platform: Any, create_org: Any, rotated: Any
) -> None:
    org_id = create_org(keyMode="shared")
    shared = platform.settings.shared_key_arn

    rotate(stack, org_id, onDemand=True)

    (event,) = [e for e in rotated() if e["organizationId"] == org_id]
    assert event["action"] == "not-applicable"
    assert stack.client("kms").list_key_rotations(KeyId=shared)["Rotations"] == []


def test_the_scanner_runs_daily_from_the_template() -> None:
    from orgkms.local.template import load_template
    from tests.unit.test_template import ROOT

    template = load_template(ROOT / "template.yaml")
    scanner = template["Resources"]["RotationScannerFunction"]["Properties"]
    schedules = [e["Properties"] for e in scanner["Events"].values() if e["Type"] == "Schedule"]
    assert [s["Schedule"] for s in schedules] == ["rate(1 day)"]


def test_a_duplicate_on_demand_request_does_not_spend_another_rotation(
    stack: Any, platform: Any, create_org: Any, rotated: Any
) -> None:
    """The same rotate-due delivered again (an SQS redelivery) was sent before the rotation it
    caused: it is skipped, so it cannot use up one of the key's ten on-demand rotations."""
    org_id = create_org()
    entry = control_plane_entry("rotate-due", {"organizationId": org_id, "onDemand": True})
    entry["Time"] = datetime.now(UTC) - timedelta(seconds=5)

    stack.put_events([entry])
    stack.deliver()
    stack.put_events([entry])
    stack.deliver()

    assert [e["action"] for e in rotated() if e["organizationId"] == org_id] == [
        "rotated-on-demand"
    ]
    key = platform.lookup(org_id).encrypt_key_arn
    assert len(stack.client("kms").list_key_rotations(KeyId=key)["Rotations"]) == 1


def test_a_redelivery_after_a_crash_between_rotating_and_recording_rotates_once(
    stack: Any, platform: Any, create_org: Any
) -> None:
    """The first delivery rotated the key on demand and died before the registry write: the
    redelivered message finds KMS's own record of that rotation and does not rotate again."""
    from orgkms.rotation import RotationService

    org_id = create_org()
    key = platform.lookup(org_id).encrypt_key_arn
    service = RotationService(platform.registry, lambda region: stack.client("kms"))
    sent = time.time() - 5

    service.rotate(org_id, on_demand=True, requested_at=sent)
    platform.registry.set_attributes(org_id, {"lastRotatedAt": 0})  # the write that never happened
    again = service.rotate(org_id, on_demand=True, requested_at=sent)

    assert again is not None and again.action == "rotated-on-demand"
    assert len(stack.client("kms").list_key_rotations(KeyId=key)["Rotations"]) == 1
