"""Erasure of an organization (GDPR right to erasure) by crypto-shredding, and its receipt.

What :meth:`ErasureService.erase` does, in order, each step safe to repeat:

1. refuse an unknown, not-ready or already-erased organization and a waiting period outside
   7-30 days (AWS's bounds, checked here because emulators accept less);
2. take an inventory of every object version under ``orgs/<org>/`` and the key that protects it
   (``orgkms-key-arn`` metadata, else the SSE-KMS key): a version under a key that is not being
   destroyed (the shared key, another org's key, no KMS key) is *residue*, because copies of it
   elsewhere (backups, replicas, exports) would stay readable. Residue refuses the erasure unless
   ``force``; it is listed in the receipt either way;
3. mark the organization ERASING in the registry and drop its cached materials in this process.
   Every other warm process refuses it once its cached record is older than the cache's max age
   (``ORGKMS_CACHE_MAX_AGE_SECONDS``): that is the bound, stated in the receipt;
4. disable each of the org's own keys and schedule its deletion;
5. delete every version of its objects (the key's destruction is what erases; deleting the
   objects keeps storage from holding data nobody can read), counting what existed;
6. append an ``erased`` entry to the audit trail and mark the org ERASED with that entry's hash.

:meth:`ErasureService.cancel` undoes step 4 within the waiting period: CancelKeyDeletion leaves a
key Disabled, so each key is enabled again and its state checked; the org is READY again. Deleted
objects do not come back; copies made before (exports, backups) become readable again.
"""

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from orgkms.audit import AuditTrail, canonical_json
from orgkms.errors import ErasureRefused, KeyUnavailable
from orgkms.ids import org_prefix, validate_org_id
from orgkms.observability import SERVICE
from orgkms.registry import OrgRecord, OrgRegistry
from orgkms.store import META_KEY_ARN

logger = Logger(service=SERVICE, child=True)

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS, DEFAULT_WINDOW_DAYS = 7, 30, 30
ORG_TAG, STACK_TAG = "orgkms:organization-id", "orgkms:stack"
DELETE_BATCH = 1000
RESIDUE_IN_MESSAGE = 3


@dataclass(frozen=True)
class ObjectVersion:
    s3_key: str
    version_id: str
    size: int
    latest: bool
    key_arn: str  # the KMS key protecting it; "" when none


@dataclass
class Inventory:
    """Every version under an org's prefix, counted as the bucket holds them."""

    versions: list[ObjectVersion] = field(default_factory=list)
    delete_markers: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        current = [v for v in self.versions if v.latest]
        return {
            "objects": len(current),
            "bytes": sum(v.size for v in current),
            "versions": len(self.versions),
            "versionBytes": sum(v.size for v in self.versions),
            "deleteMarkers": len(self.delete_markers),
        }


@dataclass
class ErasurePlan:
    org_id: str
    record: OrgRecord
    destroyed: list[str]
    kept: dict[str, str]  # key ARN -> why it is not destroyed
    inventory: Inventory

    @property
    def residue(self) -> list[dict[str, Any]]:
        return [
            {
                "s3Key": v.s3_key,
                "versionId": v.version_id,
                "current": v.latest,
                "bytes": v.size,
                "keyArn": v.key_arn,
                "why": self.kept.get(v.key_arn, "not encrypted under a KMS key")
                if v.key_arn
                else "not encrypted under a KMS key",
            }
            for v in self.inventory.versions
            if v.key_arn not in self.destroyed
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "organizationId": self.org_id,
            "keysToDestroy": self.destroyed,
            "keysKept": [{"keyArn": k, "why": why} for k, why in self.kept.items()],
            **self.inventory.counts(),
            "residue": self.residue,
        }


class ErasureService:
    """Erase organizations and cancel erasures. Clients come in; nothing is created here."""

    def __init__(
        self,
        *,
        registry: OrgRegistry,
        s3: Any,
        bucket: str,
        kms_for_region: Callable[[str], Any],
        stack_name: str,
        cache_max_age_seconds: float,
        audit: AuditTrail | None = None,
        envelope: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._s3 = s3
        self._bucket = bucket
        self._kms_for_region = kms_for_region
        self._stack_name = stack_name
        self._cache_max_age = cache_max_age_seconds
        self._audit = audit
        self._envelope = envelope
        self._clock = clock

    @classmethod
    def from_platform(cls, platform: Any) -> "ErasureService":
        settings = platform.settings
        return cls(
            registry=platform.registry,
            s3=platform.client("s3"),
            bucket=settings.data_bucket,
            kms_for_region=lambda region: platform.client("kms", region),
            stack_name=settings.stack_name,
            cache_max_age_seconds=settings.cache.max_age_seconds,
            audit=platform.audit,
            envelope=platform.envelope,
        )

    # ------------------------------------------------------------------ erase

    def plan(self, org_id: str) -> ErasurePlan:
        """What an erasure of ``org_id`` would destroy, and its residue. Changes nothing."""
        record = self._erasable(org_id)
        destroyed, kept = self._key_fates(record)
        return ErasurePlan(org_id, record, destroyed, kept, self._inventory(org_id, with_keys=True))

    def erase(
        self,
        org_id: str,
        window_days: int = DEFAULT_WINDOW_DAYS,
        force: bool = False,
        reason: str = "",
    ) -> dict[str, Any]:
        """Erase ``org_id``; returns the receipt. Raises :class:`ErasureRefused` before any
        change when the request is invalid or residue exists without ``force``."""
        validate_window(window_days)
        plan = self.plan(org_id)
        residue = plan.residue
        if residue and not force:
            first = ", ".join(r["s3Key"] for r in residue[:RESIDUE_IN_MESSAGE])
            raise ErasureRefused(
                f"organization {org_id!r}: {len(residue)} object version(s) are under a key that "
                f"is not being destroyed (first: {first}); see 'orgkms erase {org_id} --plan', "
                "migrate them, or erase with --force to list them in the receipt"
            )

        self._registry.begin_erasure(org_id)
        if self._envelope is not None:
            self._envelope.flush(org_id)
        keys = [self._disable_and_schedule(arn, window_days) for arn in plan.destroyed]
        keys += [{"keyArn": arn, "action": "kept", "why": why} for arn, why in plan.kept.items()]
        counts = self._delete_objects(org_id)

        receipt = self._receipt(plan, window_days, force, reason, keys, counts, residue)
        if self._audit is not None:
            entry = self._audit.append(
                org_id,
                "erased",
                keys=keys,
                counts=counts,
                residueVersions=len(residue),
                residueSha256=hashlib.sha256(canonical_json({"r": residue}).encode()).hexdigest(),
                forced=force,
                reason=reason,
                deletionWindowDays=window_days,
            )
            receipt["auditEntry"] = {"sequence": entry.sequence, "hash": entry.hash}
        self._registry.mark_erased(org_id, receipt["auditEntry"]["hash"])
        logger.info(
            "organization erased",
            extra={"org_id": org_id, "objects": counts["objects"], "forced": force},
        )
        return receipt

    # ------------------------------------------------------------------ cancel

    def cancel(self, org_id: str) -> dict[str, Any]:
        """Within the waiting period: cancel the keys' deletion, re-enable them, check them."""
        record = self._registry.get(validate_org_id(org_id))
        if record is None:
            raise ErasureRefused(f"organization {org_id!r} is not registered")
        if record.status not in ("ERASED", "ERASING"):
            raise ErasureRefused(f"organization {org_id!r} is not erased ({record.status})")
        self._refuse_after_window(record)
        pending = [self._pending_deletion(arn) for arn in self._keys_to_restore(record)]

        restored = []
        for arn, _date in pending:
            kms = self._kms(arn)
            kms.cancel_key_deletion(KeyId=arn)
            kms.enable_key(KeyId=arn)  # CancelKeyDeletion leaves the key Disabled
            state = kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"]
            if state != "Enabled":
                raise KeyUnavailable(f"organization {org_id!r}: {arn} is {state} after re-enabling")
            restored.append({"keyArn": arn, "state": state})
        self._registry.cancel_erasure(org_id)
        document: dict[str, Any] = {
            "organizationId": org_id,
            "status": "READY",
            "keys": restored,
            "note": "object versions deleted by the erasure are not restored",
        }
        if self._audit is not None:
            entry = self._audit.append(org_id, "erasure-cancelled", keys=restored)
            document["auditEntry"] = {"sequence": entry.sequence, "hash": entry.hash}
        return document

    # ------------------------------------------------------------------ internals

    def _erasable(self, org_id: str) -> OrgRecord:
        record = self._registry.get(validate_org_id(org_id))
        if record is None:
            raise ErasureRefused(f"organization {org_id!r} is not registered")
        if record.status == "ERASED":
            when = _iso(record.erased_at) if record.erased_at else "earlier"
            raise ErasureRefused(f"organization {org_id!r} was already erased ({when})")
        if record.status not in ("READY", "ERASING"):
            raise ErasureRefused(f"organization {org_id!r} is not ready ({record.status})")
        return record

    def _key_fates(self, record: OrgRecord) -> tuple[list[str], dict[str, str]]:
        """The org's keys this erasure destroys (keys this stack made for it), and the others
        with the reason they stay (the shared key, a key orgkms did not make for this org)."""
        arns = [*record.decrypt_key_arns, record.encrypt_key_arn]
        if self._audit is not None:
            arns += self._audit.key_arns(record.org_id)  # old keys, retired or not
        destroyed, kept = [], {}
        for arn in dict.fromkeys(a for a in arns if a):
            if self._made_for(arn, record.org_id):
                destroyed.append(arn)
            else:
                kept[arn] = "not a key orgkms made for this organization (e.g. the shared key)"
        return destroyed, kept

    def _refuse_after_window(self, record: OrgRecord) -> None:
        """The window runs from the erasure itself, so it also binds an org that had no key of
        its own to destroy (the shared key's orgs, erased with ``force``)."""
        if self._audit is None or not record.erased_at:
            return
        erased = [e for e in self._audit.entries(record.org_id) if e.action == "erased"]
        window = erased[-1].fields.get("deletionWindowDays") if erased else None
        if isinstance(window, int) and record.erased_at + window * 86_400 <= self._clock():
            raise ErasureRefused(
                f"organization {record.org_id!r} was erased on {_iso(record.erased_at)} with a "
                f"{window}-day window: too late to cancel"
            )

    def _keys_to_restore(self, record: OrgRecord) -> list[str]:
        """The org's current keys, and old keys only if the erasure itself scheduled them (a key
        a migration retired before stays retired)."""
        arns = [*record.decrypt_key_arns, record.encrypt_key_arn]
        if self._audit is not None:
            erased = [e for e in self._audit.entries(record.org_id) if e.action == "erased"]
            if erased:
                arns += [
                    k["keyArn"]
                    for k in erased[-1].fields.get("keys", [])
                    if k.get("action") == "scheduled-deletion"
                ]
        return [a for a in dict.fromkeys(arns) if a and self._made_for(a, record.org_id)]

    def _made_for(self, key_arn: str, org_id: str) -> bool:
        try:
            tags = self._kms(key_arn).list_resource_tags(KeyId=key_arn).get("Tags", [])
        except ClientError:
            return False
        found = {t["TagKey"]: t["TagValue"] for t in tags}
        return found.get(ORG_TAG) == org_id and found.get(STACK_TAG) == self._stack_name

    def _disable_and_schedule(self, key_arn: str, window_days: int) -> dict[str, Any]:
        kms = self._kms(key_arn)
        try:
            metadata = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
            if metadata["KeyState"] == "PendingDeletion":  # a resumed erasure, or retired earlier
                return {
                    "keyArn": key_arn,
                    "action": "already-pending-deletion",
                    "deletionDate": _date(metadata.get("DeletionDate")),
                }
            if metadata["KeyState"] == "Enabled":
                kms.disable_key(KeyId=key_arn)
            date = kms.schedule_key_deletion(KeyId=key_arn, PendingWindowInDays=window_days).get(
                "DeletionDate"
            )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            raise KeyUnavailable(f"erasing: {key_arn} could not be disabled ({code})") from err
        return {"keyArn": key_arn, "action": "scheduled-deletion", "deletionDate": _date(date)}

    def _pending_deletion(self, key_arn: str) -> tuple[str, str]:
        try:
            metadata = self._kms(key_arn).describe_key(KeyId=key_arn)["KeyMetadata"]
        except ClientError as err:
            raise ErasureRefused(
                f"{key_arn} no longer exists: the deletion window is over"
            ) from err
        if metadata["KeyState"] != "PendingDeletion":
            raise ErasureRefused(f"{key_arn} is {metadata['KeyState']}, not pending deletion")
        deletion = metadata.get("DeletionDate")
        if isinstance(deletion, datetime) and deletion.timestamp() <= self._clock():
            raise ErasureRefused(
                f"the deletion window of {key_arn} ended on {_date(deletion)}: too late to cancel"
            )
        return key_arn, _date(deletion)

    def _inventory(self, org_id: str, with_keys: bool) -> Inventory:
        found = Inventory()
        for page in self._version_pages(org_id):
            for version in page.get("Versions", []):
                key_arn = self._protecting_key(version) if with_keys else ""
                found.versions.append(
                    ObjectVersion(
                        s3_key=version["Key"],
                        version_id=str(version.get("VersionId") or "null"),
                        size=int(version.get("Size", 0)),
                        latest=bool(version.get("IsLatest")),
                        key_arn=key_arn,
                    )
                )
            for marker in page.get("DeleteMarkers", []):
                found.delete_markers.append((marker["Key"], str(marker.get("VersionId") or "null")))
        return found

    def _version_pages(self, org_id: str) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_object_versions")
        yield from paginator.paginate(Bucket=self._bucket, Prefix=org_prefix(org_id))

    def _protecting_key(self, version: dict[str, Any]) -> str:
        """The key an object version is under, from its metadata alone (no KMS call)."""
        head = self._s3.head_object(
            Bucket=self._bucket, Key=version["Key"], VersionId=version["VersionId"]
        )
        arn = head.get("Metadata", {}).get(META_KEY_ARN)
        if arn:
            return str(arn)
        if head.get("ServerSideEncryption") == "aws:kms":
            return str(head.get("SSEKMSKeyId", ""))
        return ""

    def _delete_objects(self, org_id: str) -> dict[str, int]:
        """Delete every version and delete marker under the org's prefix; count what existed.
        Passes repeat while a late writer (within the cache bound) still adds versions."""
        total: dict[str, int] = {}
        for _ in range(5):
            inventory = self._inventory(org_id, with_keys=False)
            counts = inventory.counts()
            if not total:
                total = counts
            elif counts["versions"]:
                total["lateVersions"] = total.get("lateVersions", 0) + counts["versions"]
            targets = [(v.s3_key, v.version_id) for v in inventory.versions]
            targets += inventory.delete_markers
            if not targets:
                return total
            for start in range(0, len(targets), DELETE_BATCH):
                batch = targets[start : start + DELETE_BATCH]
                response = self._s3.delete_objects(
                    Bucket=self._bucket,
                    Delete={
                        "Objects": [{"Key": k, "VersionId": v} for k, v in batch],
                        "Quiet": True,
                    },
                )
                if response.get("Errors"):
                    error = response["Errors"][0]
                    raise KeyUnavailable(
                        f"erasing {org_id!r}: S3 refused to delete {error.get('Key')} "
                        f"({error.get('Code')}); run the erasure again to finish it"
                    )
        raise KeyUnavailable(f"erasing {org_id!r}: objects keep appearing; run it again")

    def _receipt(
        self,
        plan: ErasurePlan,
        window_days: int,
        force: bool,
        reason: str,
        keys: list[dict[str, Any]],
        counts: dict[str, int],
        residue: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return {
            "organizationId": plan.org_id,
            "erasedAt": _iso(self._clock()),
            "deletionWindowDays": window_days,
            "keys": keys,
            **counts,
            "residue": residue,
            "forced": force,
            "reason": reason,
            "cacheBoundSeconds": self._cache_max_age,
            "statement": (
                "every key listed as scheduled-deletion is disabled now and destroyed on its "
                "deletion date; orgkms refuses this organization in every process within "
                f"{self._cache_max_age:g} s; every object version counted here was deleted"
            ),
            "auditEntry": {"sequence": 0, "hash": ""},
        }

    def _kms(self, key_arn: str) -> Any:
        return self._kms_for_region(key_arn.split(":")[3])


def validate_window(days: int) -> int:
    if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise ErasureRefused(
            f"deletion window {days} days: KMS waits {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days"
        )
    return days


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return str(value or "")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
