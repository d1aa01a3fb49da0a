"""The key-control commands as a user meets them: byok policy/check/request, rotate, status."""

import json
from pathlib import Path
from typing import Any

from orgkms.cli import EXIT_ERROR
from tests.functional.test_cli import run
from tests.functional.test_customer_keys import customer_key, put_on_customer_key


def test_byok_policy_prints_statements_bound_to_the_org(
    stack: Any, create_org: Any, capsysbinary: Any
) -> None:
    org = create_org()
    code, out, _ = run(capsysbinary, "--json", "byok", "policy", org)
    statements = json.loads(out)
    assert code == 0
    data = [s for s in statements if "kms:GenerateDataKey" in s["Action"]]
    assert data
    for statement in data:
        condition = statement["Condition"]
        bound = condition.get("StringEquals", {}).get("kms:EncryptionContext:OrganizationId")
        prefix = condition.get("StringLike", {}).get("kms:EncryptionContext:aws:s3:arn", "")
        assert bound == org or prefix.endswith(f"/orgs/{org}/*")
    actions = {a for s in statements for a in s["Action"]}
    assert not actions & {"kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"}


def test_byok_request_refusal_is_one_line_with_the_fix(
    stack: Any, create_org: Any, capsysbinary: Any
) -> None:
    org = create_org()
    key = customer_key(stack, org, grant=False)

    code, out, err = run(capsysbinary, "byok", "request", org, key)

    assert code == EXIT_ERROR and out == b""
    assert err.count(b"\n") == 1
    assert f"orgkms byok policy {org}".encode() in err
    assert b"Traceback" not in err


def test_status_shows_a_revoked_key_and_check_restores_it(
    stack: Any, platform: Any, create_org: Any, capsysbinary: Any
) -> None:

    org = create_org()
    key = customer_key(stack, org)
    put_on_customer_key(platform, org, key)
    stack.customer_kms().disable_key(KeyId=key)

    code, _, err = run(capsysbinary, "byok", "check", org)
    assert code == EXIT_ERROR and b"disabled" in err
    code, out, _ = run(capsysbinary, "status", org)
    assert code == 0 and b"key: UNAVAILABLE" in out and b"orgkms byok check" in out

    stack.customer_kms().enable_key(KeyId=key)
    code, out, _ = run(capsysbinary, "byok", "check", org)
    assert code == 0
    assert platform.lookup(org).key_health == "AVAILABLE"


def test_rotate_on_demand_from_the_cli(
    stack: Any, create_org: Any, capsysbinary: Any, tmp_path: Path
) -> None:
    org = create_org()
    code, out, _ = run(capsysbinary, "--json", "rotate", org, "--on-demand")
    assert code == 0
    assert json.loads(out)["action"] == "rotated-on-demand"
    code, out, _ = run(capsysbinary, "status", org)
    assert b"last: rotated-on-demand" in out
