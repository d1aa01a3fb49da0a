"""The per-organization audit trail: append-only, hash-chained entries in DynamoDB.

One table (``AuditTable``), partition key ``organizationId``, sort key ``sequence``. Entry ``n``
holds the canonical JSON of what happened (``entry``), the previous entry's hash (``prevHash``) and
its own hash, ``SHA-256(prevHash || canonical JSON)``. Sequence 0 of every organization is its
head: the number and hash of the last entry. An append writes the entry (only if that sequence is
free) and moves the head (only if it still names the previous entry) in one transaction, so two
writers can never fork the chain: the loser re-reads the head and appends after the winner.

:meth:`AuditTrail.verify` recomputes every hash: a changed entry, a removed entry (a gap, a broken
link, or a head naming an entry that is gone) and a reordered entry are all detected.
"""

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from orgkms.errors import OrgKmsError
from orgkms.ids import validate_org_id
from orgkms.observability import SERVICE

logger = Logger(service=SERVICE, child=True)

GENESIS_HASH = "0" * 64
HEAD_SEQUENCE = 0
APPEND_ATTEMPTS = 8

# The actions orgkms writes. Other values are accepted (an action is a short kebab-case word), so
# new lifecycle steps can record themselves without changing this module.
ACTIONS = (
    "key-created",
    "byok-accepted",
    "byok-rejected",
    "key-rotated",
    "migrated",
    "migration-failed",
    "key-revoked",
    "key-restored",
    "key-compromise-reported",
    "erased",
    "erasure-cancelled",
    "decrypt-refused",
    "exported",
)


class AuditError(OrgKmsError):
    """The audit trail could not be written or read."""


class AuditTampered(AuditError):
    """An entry of the audit trail was changed, removed or reordered."""


@dataclass(frozen=True)
class AuditEntry:
    """One verified entry."""

    org_id: str
    sequence: int
    action: str
    at: str
    fields: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "action": self.action,
            "at": self.at,
            "fields": self.fields,
            "prevHash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Verification:
    org_id: str
    entries: int
    head_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"organizationId": self.org_id, "entries": self.entries, "headHash": self.head_hash}


def canonical_json(document: dict[str, Any]) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 kept: one text per document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + body.encode("utf-8")).hexdigest()


class AuditTrail:
    """Append to and verify organizations' audit trails.

    Example::

        trail = AuditTrail(table_name, dynamodb_client)
        entry = trail.append("acme", "key-created", keyArn=arn)
        trail.verify("acme")  # raises AuditTampered if anything was changed
    """

    def __init__(
        self, table_name: str, dynamodb: Any, clock: Callable[[], float] = time.time
    ) -> None:
        self._table = table_name
        self._ddb = dynamodb
        self._clock = clock

    def append(self, org_id: str, action: str, **fields: Any) -> AuditEntry:
        """Append one entry after the current head; returns it with its hash."""
        validate_org_id(org_id)
        _validate_action(action)
        for attempt in range(APPEND_ATTEMPTS):
            if attempt:
                # Another writer moved the head: back off (full jitter) before reading it again.
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not a secret
            sequence, prev_hash = self._head(org_id)
            body = {
                "organizationId": org_id,
                "sequence": sequence + 1,
                "action": action,
                "at": _timestamp(self._clock()),
                "fields": fields,
            }
            text = canonical_json(body)
            digest = chain_hash(prev_hash, text)
            if self._write(org_id, sequence, text, prev_hash, digest):
                logger.info(
                    "audit entry appended",
                    extra={"org_id": org_id, "action": action, "sequence": sequence + 1},
                )
                return _entry(body, prev_hash, digest)
        raise AuditError(f"audit trail of {org_id!r}: too many concurrent appends, not written")

    def entries(self, org_id: str) -> list[AuditEntry]:
        """Every entry, verified (raises :class:`AuditTampered` on the first inconsistency)."""
        return self._verified(org_id)[0]

    def verify(self, org_id: str) -> Verification:
        entries, head_hash = self._verified(org_id)
        return Verification(org_id, len(entries), head_hash)

    def key_arns(self, org_id: str) -> list[str]:
        """Every key ARN any entry names (old keys included), in order of first mention."""
        found: dict[str, None] = {}
        for entry in self.entries(org_id):
            for arn in _arns_in(entry.fields):
                found[arn] = None
        return list(found)

    # ------------------------------------------------------------------ internals

    def _verified(self, org_id: str) -> tuple[list[AuditEntry], str]:
        validate_org_id(org_id)
        head: dict[str, Any] | None = None
        entries: list[AuditEntry] = []
        prev_hash = GENESIS_HASH
        for item in self._items(org_id):
            sequence = int(item["sequence"]["N"])
            if sequence == HEAD_SEQUENCE:
                head = item
                continue
            entries.append(_checked(org_id, item, len(entries) + 1, prev_hash))
            prev_hash = entries[-1].hash
        head_sequence = int(head["headSequence"]["N"]) if head else 0
        head_hash = head["headHash"]["S"] if head else GENESIS_HASH
        if head_sequence != len(entries) or head_hash != prev_hash:
            raise AuditTampered(
                f"audit trail of {org_id!r}: the head names entry {head_sequence} "
                f"but the chain ends at entry {len(entries)} (an entry was removed or added)"
            )
        return entries, prev_hash

    def _items(self, org_id: str) -> Iterator[dict[str, Any]]:
        paginator = self._ddb.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="organizationId = :org",
                ExpressionAttributeValues={":org": {"S": org_id}},
                ConsistentRead=True,
            ):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as err:
            raise AuditError(f"reading the audit trail of {org_id!r} failed: {err}") from err

    def _head(self, org_id: str) -> tuple[int, str]:
        try:
            item = self._ddb.get_item(
                TableName=self._table,
                Key=_key(org_id, HEAD_SEQUENCE),
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as err:
            raise AuditError(f"reading the audit head of {org_id!r} failed: {err}") from err
        if not item:
            return 0, GENESIS_HASH
        return int(item["headSequence"]["N"]), item["headHash"]["S"]

    def _write(self, org_id: str, previous: int, text: str, prev_hash: str, digest: str) -> bool:
        """The entry and the head, together or not at all; False if another writer won."""
        head_condition = (
            "attribute_not_exists(headSequence)" if previous == 0 else "headSequence = :prev"
        )
        head_values: dict[str, Any] = {
            ":seq": {"N": str(previous + 1)},
            ":hash": {"S": digest},
        }
        if previous:
            head_values[":prev"] = {"N": str(previous)}
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **_key(org_id, previous + 1),
                                "entry": {"S": text},
                                "prevHash": {"S": prev_hash},
                                "hash": {"S": digest},
                            },
                            "ConditionExpression": "attribute_not_exists(organizationId)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": _key(org_id, HEAD_SEQUENCE),
                            "UpdateExpression": "SET headSequence = :seq, headHash = :hash",
                            "ConditionExpression": head_condition,
                            "ExpressionAttributeValues": head_values,
                        }
                    },
                ]
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise AuditError(f"appending to the audit trail of {org_id!r} failed: {err}") from err
        except BotoCoreError as err:
            raise AuditError(f"appending to the audit trail of {org_id!r} failed: {err}") from err
        return True


def record_quietly(trail: "AuditTrail | None", org_id: str, action: str, **fields: Any) -> None:
    """Append where an audit failure must not undo the action already done (the key exists, the
    migration switched): the failure is logged at ERROR with the org and action instead."""
    if trail is None:
        return
    try:
        trail.append(org_id, action, **fields)
    except (OrgKmsError, ValueError) as err:
        logger.error(
            "audit entry not written",
            extra={"org_id": org_id, "action": action, "reason": str(err)},
        )


def _checked(org_id: str, item: dict[str, Any], expected: int, prev_hash: str) -> AuditEntry:
    sequence = int(item["sequence"]["N"])
    where = f"audit trail of {org_id!r}, entry {sequence}"
    if sequence != expected:
        raise AuditTampered(f"{where}: expected entry {expected} (an entry was removed)")
    text, stored_prev, stored_hash = (
        item.get(n, {}).get("S", "") for n in ("entry", "prevHash", "hash")
    )
    if stored_prev != prev_hash:
        raise AuditTampered(f"{where}: does not link to entry {expected - 1}")
    if chain_hash(prev_hash, text) != stored_hash:
        raise AuditTampered(f"{where}: its content does not match its hash (changed)")
    try:
        body = json.loads(text)
    except ValueError:
        raise AuditTampered(f"{where}: not an audit entry") from None
    if body.get("organizationId") != org_id or body.get("sequence") != sequence:
        raise AuditTampered(f"{where}: belongs to another organization or position")
    return _entry(body, prev_hash, stored_hash)


def _entry(body: dict[str, Any], prev_hash: str, digest: str) -> AuditEntry:
    return AuditEntry(
        org_id=body["organizationId"],
        sequence=int(body["sequence"]),
        action=str(body["action"]),
        at=str(body["at"]),
        fields=dict(body.get("fields") or {}),
        prev_hash=prev_hash,
        hash=digest,
    )


def _arns_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("arn:") and ":kms:" in value:
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arns_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _arns_in(item)


def _validate_action(action: str) -> None:
    if not action or len(action) > 40 or not all(c.islower() or c == "-" for c in action):
        raise ValueError(f"invalid audit action {action!r}: lower-case words joined by '-'")


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _key(org_id: str, sequence: int) -> dict[str, Any]:
    return {"organizationId": {"S": org_id}, "sequence": {"N": str(sequence)}}
