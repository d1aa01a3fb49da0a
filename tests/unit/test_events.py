"""The event contract: what the org-lifecycle function accepts and what it refuses, and why."""

import json
from pathlib import Path

import pytest

from orgkms.errors import InvalidEvent
from orgkms.lifecycle import MAX_BODY_BYTES, parse_control_plane_message
from orgkms.models import CONTROL_PLANE_EVENTS, MAX_DETAIL_BYTES, OrgCreated, write_schemas

ROOT = Path(__file__).resolve().parents[2]


def body(detail: object, detail_type: str = "org-created", **overrides: object) -> str:
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "saas.control-plane",
        "account": "123456789012",
        "time": "2026-12-04T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    event.update(overrides)
    return json.dumps(event)


def test_org_created_defaults_to_a_dedicated_key() -> None:
    detail_type, detail = parse_control_plane_message(body({"organizationId": "Acme"}))

    assert detail_type == "org-created"
    assert isinstance(detail, OrgCreated)
    assert detail.organization_id == "Acme"  # never lower-cased
    assert detail.key_mode == "dedicated"
    assert detail.region is None


def test_org_created_accepts_every_documented_field() -> None:
    _, detail = parse_control_plane_message(
        body(
            {
                "organizationId": "globex",
                "ownerPrincipalArn": "arn:aws:iam::111122223333:role/Admin",
                "region": "eu-west-1",
                "keyMode": "shared",
            }
        )
    )
    assert isinstance(detail, OrgCreated)
    assert (detail.owner_principal_arn, detail.region, detail.key_mode) == (
        "arn:aws:iam::111122223333:role/Admin",
        "eu-west-1",
        "shared",
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json at all", "not JSON"),
        ("", "not JSON"),
        ("[" * 5000 + "]" * 5000, "not JSON|nests deeper"),
        (json.dumps({"a": 1}), "not an EventBridge event"),
        (body({"organizationId": "acme"}, "org-deleted-typo"), "unknown detail-type"),
        (body({"organizationId": "acme"}, source="someone.else"), "source must be"),
        (body({}), "organizationId: Field required"),
        (body({"organizationId": 42}), "organizationId"),
        (body({"organizationId": "../x"}), "organizationId: String should match"),
        (body({"organizationId": "acme", "keyMode": "borrowed"}), "keyMode"),
        (body({"organizationId": "acme", "region": "moon-1"}), "region"),
        (body({"organizationId": "acme", "ownerPrincipalArn": "*"}), "ownerPrincipalArn"),
        (body({"organizationId": "acme", "pad": "x" * MAX_DETAIL_BYTES}), "detail exceeds"),
        ("x" * (MAX_BODY_BYTES + 1), "body exceeds"),
        (
            body(
                {
                    "organizationId": "acme",
                    "n": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
                }
            ),
            "nests deeper",
        ),
    ],
)
def test_bad_messages_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_control_plane_message(raw)


def test_refusal_reasons_never_echo_the_offending_values() -> None:
    secret = "sk_live_do_not_log_me"
    with pytest.raises(InvalidEvent) as refused:
        parse_control_plane_message(body({"organizationId": secret + "/"}))
    assert secret not in str(refused.value)


def test_committed_json_schemas_match_the_models(tmp_path: Path) -> None:
    for generated in write_schemas(tmp_path):
        committed = ROOT / "schemas" / generated.name
        assert committed.exists(), f"run `make schemas`: {committed.name} is missing"
        assert json.loads(committed.read_text()) == json.loads(generated.read_text())


def test_every_sample_event_is_valid_and_every_type_has_one() -> None:
    samples = sorted((ROOT / "events").glob("*.json"))
    seen = set()
    for sample in samples:
        event = json.loads(sample.read_text())
        if sample.name.startswith("invalid-"):
            with pytest.raises(InvalidEvent):
                parse_control_plane_message(json.dumps(event))
            continue
        detail_type, _ = parse_control_plane_message(json.dumps(event))
        seen.add(detail_type)
    assert seen == set(CONTROL_PLANE_EVENTS)
