"""Migration checkpoints (DynamoDB): one item per organization, the state of its re-key.

The item is also the lock that keeps one migration per organization: a start for an org whose
migration is active under another execution is refused, naming that execution.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from orgkms.errors import OrgKmsError

ACTIVE = ("PREPARING", "DUAL", "REENCRYPTING", "VALIDATING", "SWITCHING")
MAX_LISTED_FAILURES = 20


class MigrationRefused(OrgKmsError):
    """A migration cannot start (or go on) for a reason the requester can act on."""


@dataclass
class Checkpoint:
    org_id: str
    execution: str = ""
    status: str = ""
    target_key_arn: str = ""
    source_key_arns: list[str] = field(default_factory=list)
    start_after: str = ""
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    pages: int = 0
    noncurrent_under_old_keys: int = 0
    failures: list[str] = field(default_factory=list)
    reason: str = ""
    started_at: float = 0.0
    validated_at: float = 0.0
    updated_at: float = 0.0
    retired: list[dict[str, Any]] = field(default_factory=list)
    # Executions whose prepare step may have created a target key and then died before recording
    # it: the next execution adopts a key tagged with any of them instead of making another.
    claims: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "organizationId": self.org_id,
            "execution": self.execution,
            "status": self.status,
            "targetKeyArn": self.target_key_arn,
            "sourceKeyArns": self.source_key_arns,
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "pages": self.pages,
            "noncurrentUnderOldKeys": self.noncurrent_under_old_keys,
            "failures": self.failures,
            "reason": self.reason,
            "retired": self.retired,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
        }


class CheckpointStore:
    def __init__(self, table: str, dynamodb: Any, clock: Callable[[], float] = time.time):
        self._table = table
        self._ddb = dynamodb
        self._clock = clock

    def get(self, org_id: str) -> Checkpoint | None:
        item = self._ddb.get_item(
            TableName=self._table, Key={"organizationId": {"S": org_id}}, ConsistentRead=True
        ).get("Item")
        return _decode(item) if item else None

    def begin(self, org_id: str, execution: str) -> Checkpoint:
        """Take the org's migration lock for ``execution`` (or resume it if it already has it)."""
        try:
            self._write_fresh(
                org_id,
                execution,
                ConditionExpression="attribute_not_exists(organizationId) OR "
                "NOT (#s IN (:a, :b, :c, :d, :e)) OR execution = :x",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    **{f":{k}": {"S": s} for k, s in zip("abcde", ACTIVE, strict=True)},
                    ":x": {"S": execution},
                },
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get(org_id)
            if current and current.execution == execution:
                return current
            raise MigrationRefused(
                f"organization {org_id!r} is already being migrated by "
                f"{current.execution if current else 'another execution'}"
            ) from None
        checkpoint = self.get(org_id)
        assert checkpoint is not None
        return checkpoint

    def begin_unless_running(
        self, org_id: str, execution: str, is_running: Callable[[str], bool]
    ) -> Checkpoint:
        """:meth:`begin`, taking the lock over from a holder that no longer runs (stopped, timed
        out, or cut off by the history limit: none of those reach the workflow's fail step)."""
        try:
            return self.begin(org_id, execution)
        except MigrationRefused:
            holder = self.get(org_id)
            if holder is None or not holder.execution or is_running(holder.execution):
                raise
        try:
            self._write_fresh(
                org_id,
                execution,
                ConditionExpression="execution = :stale",
                ExpressionAttributeValues={":stale": {"S": holder.execution}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise MigrationRefused(f"organization {org_id!r}: migration lock taken") from None
            raise
        taken = self.get(org_id)
        assert taken is not None
        return taken

    def _write_fresh(self, org_id: str, execution: str, **condition: Any) -> None:
        """A new PREPARING checkpoint for ``execution``, written only if ``condition`` holds.

        An earlier execution that never recorded a target (it died in, or failed in, prepare)
        is carried over in ``claims``, so a key it made is adopted rather than left unused.
        """
        now = self._clock()
        fresh = Checkpoint(org_id, execution, "PREPARING", started_at=now, updated_at=now)
        previous = self.get(org_id)
        if previous is not None and not previous.target_key_arn and previous.execution:
            fresh.claims = [c for c in (*previous.claims, previous.execution) if c != execution]
        self._ddb.put_item(TableName=self._table, Item=_encode(fresh), **condition)

    def save(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint, only while ``checkpoint.execution`` still holds the lock."""
        checkpoint.updated_at = self._clock()
        checkpoint.failures = checkpoint.failures[:MAX_LISTED_FAILURES]
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=_encode(checkpoint),
                ConditionExpression="execution = :x",
                ExpressionAttributeValues={":x": {"S": checkpoint.execution}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise MigrationRefused(
                    f"organization {checkpoint.org_id!r}: migration lock lost"
                ) from None
            raise


_NUMBERS = (
    "total",
    "done",
    "skipped",
    "failed",
    "bytes",
    "pages",
    "noncurrent_under_old_keys",
    "started_at",
    "updated_at",
    "validated_at",
)
_STRINGS = ("execution", "status", "target_key_arn", "start_after", "reason")
_LISTS = ("source_key_arns", "failures", "claims")


def _encode(cp: Checkpoint) -> dict[str, Any]:
    import json

    item: dict[str, Any] = {"organizationId": {"S": cp.org_id}}
    item.update({name: {"N": repr(getattr(cp, name))} for name in _NUMBERS})
    item.update({name: {"S": getattr(cp, name)} for name in _STRINGS})
    item.update({name: {"S": json.dumps(getattr(cp, name))} for name in _LISTS})
    item["retired"] = {"S": json.dumps(cp.retired)}
    return item


def _decode(item: dict[str, Any]) -> Checkpoint:
    import json

    cp = Checkpoint(item["organizationId"]["S"])
    for name in _NUMBERS:
        if name in item:
            value = float(item[name]["N"])
            setattr(cp, name, value if name.endswith("_at") else int(value))
    for name in _STRINGS:
        setattr(cp, name, item.get(name, {}).get("S", ""))
    for name in (*_LISTS, "retired"):
        setattr(cp, name, json.loads(item.get(name, {}).get("S", "[]")))
    return cp
