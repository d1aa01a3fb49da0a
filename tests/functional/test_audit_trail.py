"""The per-org audit trail: hash-chained, append-only, and every tampering detected."""

import io
import threading
from collections.abc import Callable
from typing import Any

import pytest

from orgkms.audit import GENESIS_HASH, AuditTampered, AuditTrail, canonical_json, chain_hash
from orgkms.errors import DecryptionRefused
from tests.conftest import copy_object_to_org


def _trail(platform: Any) -> AuditTrail:
    trail: AuditTrail = platform.audit
    return trail


def _item(stack: Any, platform: Any, org: str, sequence: int) -> dict[str, Any]:
    return dict(
        stack.client("dynamodb").get_item(
            TableName=platform.settings.audit_table,
            Key={"organizationId": {"S": org}, "sequence": {"N": str(sequence)}},
        )["Item"]
    )


def _put(stack: Any, platform: Any, item: dict[str, Any]) -> None:
    stack.client("dynamodb").put_item(TableName=platform.settings.audit_table, Item=item)


def test_creating_an_org_key_appends_a_key_created_entry(platform: Any, create_org: Any) -> None:
    org = create_org()

    entries = _trail(platform).entries(org)

    assert [e.action for e in entries] == ["key-created"]
    assert entries[0].fields["keyArn"] == platform.registry.get(org).encrypt_key_arn
    assert entries[0].prev_hash == GENESIS_HASH


def test_each_hash_covers_the_previous_hash_and_the_canonical_entry(
    platform: Any, new_org: Any
) -> None:
    org, trail = new_org(), _trail(platform)

    first = trail.append(org, "key-rotated", keyArn="arn:aws:kms:us-east-1:1:key/a")
    second = trail.append(org, "decrypt-refused", name="x.txt")

    body = {
        "organizationId": org,
        "sequence": 2,
        "action": "decrypt-refused",
        "at": second.at,
        "fields": {"name": "x.txt"},
    }
    assert second.prev_hash == first.hash
    assert second.hash == chain_hash(first.hash, canonical_json(body))
    assert trail.verify(org).entries == 2 and trail.verify(org).head_hash == second.hash


def _changed_field(stack: Any, platform: Any, org: str) -> None:
    item = _item(stack, platform, org, 2)
    item["entry"] = {"S": item["entry"]["S"].replace("x.txt", "y.txt")}
    _put(stack, platform, item)


def _rehashed_entry(stack: Any, platform: Any, org: str) -> None:
    """The forger recomputes the changed entry's own hash: the next entry's link breaks."""
    item = _item(stack, platform, org, 2)
    text = item["entry"]["S"].replace("x.txt", "y.txt")
    item.update(entry={"S": text}, hash={"S": chain_hash(item["prevHash"]["S"], text)})
    _put(stack, platform, item)


def _removed_middle(stack: Any, platform: Any, org: str) -> None:
    stack.client("dynamodb").delete_item(
        TableName=platform.settings.audit_table,
        Key={"organizationId": {"S": org}, "sequence": {"N": "2"}},
    )


def _removed_last(stack: Any, platform: Any, org: str) -> None:
    stack.client("dynamodb").delete_item(
        TableName=platform.settings.audit_table,
        Key={"organizationId": {"S": org}, "sequence": {"N": "3"}},
    )


def _swapped(stack: Any, platform: Any, org: str) -> None:
    two, three = _item(stack, platform, org, 2), _item(stack, platform, org, 3)
    for item, sequence in ((two, "3"), (three, "2")):
        item["sequence"] = {"N": sequence}
        _put(stack, platform, item)


@pytest.mark.parametrize(
    "tamper",
    [_changed_field, _rehashed_entry, _removed_middle, _removed_last, _swapped],
    ids=["changed", "changed-and-rehashed", "middle-removed", "last-removed", "reordered"],
)
def test_tampering_with_any_entry_is_detected(
    stack: Any, platform: Any, new_org: Any, tamper: Callable[[Any, Any, str], None]
) -> None:
    org, trail = new_org(), _trail(platform)
    trail.append(org, "key-created", keyArn="arn:aws:kms:us-east-1:1:key/a")
    trail.append(org, "decrypt-refused", name="x.txt")
    trail.append(org, "exported", objects=1)
    trail.verify(org)

    tamper(stack, platform, org)

    with pytest.raises(AuditTampered, match=org):
        trail.verify(org)


def test_concurrent_appends_never_fork_the_chain(platform: Any, new_org: Any) -> None:
    org, trail = new_org(), _trail(platform)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(4):
                trail.append(org, "decrypt-refused", writer=n, attempt=i)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    entries = trail.entries(org)
    assert [e.sequence for e in entries] == list(range(1, 17))
    assert {(e.fields["writer"], e.fields["attempt"]) for e in entries} == {
        (n, i) for n in range(4) for i in range(4)
    }


def test_a_refused_get_is_recorded(stack: Any, platform: Any, create_org: Any) -> None:
    a, b = create_org(), create_org()
    stored = platform.store.put(a, "report", "x.txt", io.BytesIO(b"secret"))
    copy_object_to_org(stack, platform, stored.s3_key, b, "x.txt")

    with pytest.raises(DecryptionRefused):
        platform.store.get(b, "x.txt", io.BytesIO())

    refused = [e for e in _trail(platform).entries(b) if e.action == "decrypt-refused"]
    assert [e.fields["name"] for e in refused] == ["x.txt"]
    assert "secret" not in str(refused[0].as_dict())


def test_key_arns_include_keys_named_by_any_entry(platform: Any, create_org: Any) -> None:
    org = create_org()
    old = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    _trail(platform).append(org, "migrated", sourceKeyArns=[old], retired=[{"keyArn": old}])

    arns = _trail(platform).key_arns(org)

    assert arns == [platform.registry.get(org).encrypt_key_arn, old]
