"""orgkms erase, audit and export as a user meets them: receipts, refusals, exit statuses."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.functional.test_cli import run


def test_erase_writes_a_receipt_and_cancel_restores_the_key(
    stack: Any, platform: Any, create_org: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"x" * 123))
    receipt_path = tmp_path / "receipt.json"

    code, out, _ = run(
        capsysbinary, "erase", org, "--confirm", "--window", "7", "--receipt", str(receipt_path)
    )

    assert code == 0 and b"erased: 1 objects" in out
    receipt = json.loads(receipt_path.read_text())
    assert receipt["organizationId"] == org and receipt["deletionWindowDays"] == 7
    assert receipt["auditEntry"]["hash"] == platform.audit.entries(org)[-1].hash
    code, _, err = run(capsysbinary, "erase", org, "--confirm")
    assert code == 1 and b"already erased" in err

    code, out, _ = run(capsysbinary, "erase", org, "--cancel")
    assert code == 0 and b"enabled again" in out
    key = platform.registry.get(org).encrypt_key_arn
    assert stack.client("kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["erase", "{org}"], 2, b"add --confirm"),
        (["erase", "{org}", "--confirm", "--window", "3"], 1, b"7 to 30 days"),
        (["erase", "no-such-org", "--confirm"], 1, b"not registered"),
        (["erase", "{org}", "--cancel"], 1, b"not erased"),
        (["audit", "{org}", "--days", "120"], 1, b"keeps 90 days"),
        (["audit", "{org}", "--end", "2999-01-01T00:00:00+00:00"], 1, b"in the future"),
    ],
)
def test_bad_erase_and_audit_requests_are_refused_with_the_reason(
    create_org: Any, capsysbinary: Any, argv: list[str], code: int, message: bytes
) -> None:
    org = create_org()

    got, out, err = run(capsysbinary, *(a.format(org=org) for a in argv))

    assert got == code and out == b"" and message in err and err.count(b"\n") == 1


def test_audit_verify_detects_a_changed_entry(
    stack: Any, platform: Any, create_org: Any, capsysbinary: Any
) -> None:
    org = create_org()
    code, out, _ = run(capsysbinary, "audit", org, "--verify")
    assert code == 0 and b"1 entries, chain intact" in out

    ddb, table = stack.client("dynamodb"), platform.settings.audit_table
    key = {"organizationId": {"S": org}, "sequence": {"N": "1"}}
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    item["entry"]["S"] = item["entry"]["S"].replace("key-created", "key-rotated")
    ddb.put_item(TableName=table, Item=item)

    code, out, err = run(capsysbinary, "audit", org, "--verify")
    assert code == 1 and out == b"" and b"does not match its hash" in err


def test_export_command_writes_the_manifest(
    platform: Any, create_org: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"portable"))

    code, out, _ = run(capsysbinary, "export", org, str(tmp_path / "out"))

    assert code == 0 and b"exported 1 objects" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [o["name"] for o in manifest["objects"]] == ["a.txt"]
