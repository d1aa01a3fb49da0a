"""Key rotation per organization: scheduled, reported honestly, never done to a customer's key.

Each organization has a rotation period (``rotationPeriodDays`` of org-created, default 365) and a
next-due time in the registry's sparse ``RotationDue`` index. A daily scanner queries that index
shard by shard and queues one ``rotate-due`` message per due organization; the org-lifecycle
function then handles each one on its own, so no Lambda loops over every organization.

What ``rotate-due`` does, by key model:

* platform-managed org key: confirm KMS automatic rotation with the org's period (turning it on or
  changing the period if needed); with ``onDemand``,
  rotate on demand instead, while the key has on-demand rotations left (KMS allows ten per key),
  then fall back to automatic rotation and say so;
* customer-managed key: read and report the customer's rotation status; never rotate it;
* shared platform key: not applicable (the platform's key is rotated by KMS for everyone);
* ``rekey``: start the re-key workflow onto a new org key, which is the only thing that moves
  existing data off old key material.

Rotation itself re-encrypts nothing: KMS keeps every earlier key material of a key, so data
encrypted before a rotation stays under that material until it is re-keyed.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from orgkms.audit import record_quietly
from orgkms.errors import KeyUnavailable, OrgNotFound, OrgNotReady
from orgkms.models import DEFAULT_ROTATION_DAYS, MIN_ROTATION_DAYS, KeyRotated, MigrationRequest
from orgkms.observability import SERVICE
from orgkms.registry import ROTATION_SHARDS, OrgRecord, OrgRegistry, rotation_shard

logger = Logger(service=SERVICE, child=True)

DAY = 86_400
MAX_ON_DEMAND_ROTATIONS = 10
NOT_RE_ENCRYPTED = (
    "rotation changes the key material of new data keys only; data written earlier stays under "
    "earlier material (still readable, same key ARN) until 'orgkms rotate ORG --rekey' moves it"
)


class RotationService:
    """Schedules and performs rotation for organizations."""

    def __init__(
        self,
        registry: OrgRegistry,
        kms_for_region: Callable[[str], Any],
        start_migration: Callable[[MigrationRequest], str] | None = None,
        clock: Callable[[], float] = time.time,
        platform_account: str = "",
        audit: Any = None,
    ) -> None:
        self._audit = audit
        self._registry = registry
        self._platform_account = platform_account
        self._kms_for_region = kms_for_region
        self._start_migration = start_migration
        self._clock = clock

    def schedule(self, org_id: str, period_days: int | None = None) -> None:
        """Put the organization on the rotation index (org-created; a changed period)."""
        period = period_days or DEFAULT_ROTATION_DAYS
        self._registry.set_attributes(
            org_id,
            {
                "rotationPeriodDays": period,
                "nextRotationAt": int(self._clock()) + period * DAY,
                "rotationShard": rotation_shard(org_id),
            },
        )

    def due(self) -> Iterator[str]:
        """Every organization whose rotation is due, shard by shard (the scanner's query)."""
        now = int(self._clock())
        for shard in range(ROTATION_SHARDS):
            yield from self._registry.due_for_rotation(shard, now)

    def rotate(
        self,
        org_id: str,
        *,
        on_demand: bool = False,
        rekey: bool = False,
        scheduled: bool = False,
        requested_at: float = 0.0,
    ) -> KeyRotated | None:
        """Rotate, confirm or report the organization's key; None when there is nothing to do: a
        scheduled rotation no longer due, or a request sent before the last rotation (a
        duplicate delivery, which must not spend one of the key's ten on-demand rotations)."""
        record = self._registry.get(org_id)
        if record is None:
            raise OrgNotFound(f"organization {org_id!r} is not registered")
        if not record.ready:
            raise OrgNotReady(f"organization {org_id!r} has no usable key yet ({record.status})")
        now = int(self._clock())
        if scheduled and record.next_rotation_at > now:
            logger.info("rotation not due; skipped", extra={"org_id": org_id})
            return None
        if requested_at and record.last_rotated_at and requested_at <= record.last_rotated_at:
            logger.info("rotated since this request was sent; skipped", extra={"org_id": org_id})
            return None
        period = record.rotation_period_days or DEFAULT_ROTATION_DAYS

        if rekey:
            result = self._rekey(record)
        elif record.key_mode == "shared":
            result = KeyRotated(
                organizationId=org_id,
                keyArn=record.encrypt_key_arn,
                keyMode="shared",
                action="not-applicable",
                note="the organization is on the platform's shared key, which KMS rotates "
                "yearly for every organization on it; migrate it to a key of its own to rotate "
                "it on its own schedule",
            )
        elif record.key_mode == "customer" or self._is_customer_key(record.encrypt_key_arn):
            result = self._report_customer_key(record)
        else:
            result = self._rotate_org_key(record, period, on_demand, requested_at)

        self._registry.set_attributes(
            org_id,
            {
                "lastRotatedAt": now,
                "lastRotation": result.action,
                "nextRotationAt": now + period * DAY,
                "rotationShard": rotation_shard(org_id),
                "rotationPeriodDays": period,
            },
        )
        record_quietly(
            self._audit,
            org_id,
            "key-rotated",
            keyArn=result.key_arn,
            rotation=result.action,
            rotationEnabled=result.rotation_enabled,
        )
        logger.info(
            "rotation handled",
            extra={"org_id": org_id, "key_arn": result.key_arn, "action": result.action},
        )
        return result

    # ------------------------------------------------------------------ per key model

    def _rotate_org_key(
        self, record: OrgRecord, period: int, on_demand: bool, requested_at: float = 0.0
    ) -> KeyRotated:
        key_arn = record.encrypt_key_arn
        kms = self._kms_for_region(key_arn.split(":")[3])
        with _kms_errors(record.org_id, key_arn):
            used, latest = self._on_demand_rotations(kms, key_arn)
            if on_demand and requested_at and latest >= requested_at:
                # KMS already rotated the key after this request was sent: an earlier delivery
                # did it and died before recording it. Record it now; do not rotate again.
                return self._rotated(record, "rotated-on-demand", True, period, used)
            if on_demand and used < MAX_ON_DEMAND_ROTATIONS:
                try:
                    kms.rotate_key_on_demand(KeyId=key_arn)
                    return self._rotated(record, "rotated-on-demand", True, period, used + 1)
                except ClientError as err:
                    if _code(err) != "LimitExceededException":  # a concurrent one took the last
                        raise
            auto_period = max(period, MIN_ROTATION_DAYS)
            kms.enable_key_rotation(KeyId=key_arn, RotationPeriodInDays=auto_period)
            status = kms.get_key_rotation_status(KeyId=key_arn)
        note = ""
        if on_demand:
            note = (
                f"the key has used all {MAX_ON_DEMAND_ROTATIONS} on-demand rotations KMS allows; "
                f"automatic rotation every {auto_period} days is on instead. "
            )
        return KeyRotated(
            organizationId=record.org_id,
            keyArn=key_arn,
            keyMode=record.key_mode,
            action="automatic-confirmed",
            rotationEnabled=bool(status.get("KeyRotationEnabled")),
            periodDays=int(status.get("RotationPeriodInDays") or auto_period),
            note=note + NOT_RE_ENCRYPTED,
        )

    def _rotated(
        self, record: OrgRecord, action: Any, enabled: bool, period: int, used: int
    ) -> KeyRotated:
        return KeyRotated(
            organizationId=record.org_id,
            keyArn=record.encrypt_key_arn,
            keyMode=record.key_mode,
            action=action,
            rotationEnabled=enabled,
            periodDays=period,
            note=f"on-demand rotation {used} of {MAX_ON_DEMAND_ROTATIONS}; {NOT_RE_ENCRYPTED}",
        )

    def _report_customer_key(self, record: OrgRecord) -> KeyRotated:
        key_arn = record.encrypt_key_arn
        kms = self._kms_for_region(key_arn.split(":")[3])
        enabled: bool | None = None
        period: int | None = None
        try:
            status = kms.get_key_rotation_status(KeyId=key_arn)
            enabled = bool(status.get("KeyRotationEnabled"))
            period = status.get("RotationPeriodInDays")
            note = "the customer's key: orgkms reports its rotation and never rotates it"
        except ClientError as err:
            note = (
                f"the customer's key: its rotation status could not be read "
                f"({_code(err)}); orgkms never rotates it"
            )
        return KeyRotated(
            organizationId=record.org_id,
            keyArn=key_arn,
            keyMode="customer",
            action="customer-reported",
            rotationEnabled=enabled,
            periodDays=period,
            note=f"{note}. {NOT_RE_ENCRYPTED}",
        )

    def _rekey(self, record: OrgRecord) -> KeyRotated:
        if record.key_mode == "customer" or self._is_customer_key(record.encrypt_key_arn):
            raise OrgNotReady(
                f"organization {record.org_id!r} uses its customer's key: the customer rotates "
                "or replaces it (byok-requested with a new key)"
            )
        if self._start_migration is None:
            raise OrgNotReady("this deployment has no re-key workflow")
        execution = self._start_migration(
            MigrationRequest(
                organizationId=record.org_id, purpose="rotation", reason="rotation with re-key"
            )
        )
        return KeyRotated(
            organizationId=record.org_id,
            keyArn=record.encrypt_key_arn,
            keyMode=record.key_mode,
            action="rekey",
            note=f"re-keying onto a new org key in {execution}; existing data moves with it",
        )

    def _is_customer_key(self, key_arn: str) -> bool:
        # Also true while a BYOK move is under way (the org is not customer-managed yet, but
        # already encrypts under the customer's key): never rotate a key of another account.
        account = key_arn.split(":")[4] if key_arn.count(":") >= 5 else ""
        return bool(self._platform_account) and account != self._platform_account

    @staticmethod
    def _on_demand_rotations(kms: Any, key_arn: str) -> tuple[int, float]:
        """How many on-demand rotations the key has had, and when the latest was (epoch s)."""
        dates = [
            rotation.get("RotationDate")
            for page in kms.get_paginator("list_key_rotations").paginate(KeyId=key_arn)
            for rotation in page.get("Rotations", [])
            if rotation.get("RotationType") == "ON_DEMAND"
        ]
        latest = max(
            (d.timestamp() if hasattr(d, "timestamp") else float(d or 0) for d in dates),
            default=0.0,
        )
        return len(dates), latest


@contextmanager
def _kms_errors(org_id: str, key_arn: str) -> Iterator[None]:
    """KMS refusing an org key during rotation: the key is unavailable (retried, then DLQ)."""
    try:
        yield
    except ClientError as err:
        raise KeyUnavailable(
            f"key unavailable: rotation of {key_arn} for organization {org_id!r} failed "
            f"({_code(err)})"
        ) from err
    except BotoCoreError as err:
        raise KeyUnavailable(f"KMS unreachable rotating {key_arn}: {err}") from err


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))
