"""The organization registry (DynamoDB): which key ARNs an organization encrypts and decrypts with.

One item per organization, keyed by the id exactly as given. Keys are stored as ARNs resolved with
DescribeKey, never as aliases. Creation is claimed with a conditional write that carries a lease,
so two deliveries at once cannot both create a key, and a crashed creation can be taken over once
its lease has run out.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from orgkms.errors import OrgKmsError

Status = Literal["CREATING", "READY", "ERASING", "ERASED"]
KeyMode = Literal["dedicated", "shared", "customer"]
KeyHealth = Literal["AVAILABLE", "UNAVAILABLE"]
# Items that are not organizations start with this (org ids cannot): key-ownership guards.
_KEY_GUARD_PREFIX = "#key#"
# Organizations are spread over this many shards of the rotation index, so the daily scan reads
# only due organizations, one shard at a time.
ROTATION_SHARDS = 16


@dataclass(frozen=True)
class OrgRecord:
    """One organization as the registry knows it."""

    org_id: str
    status: Status
    key_mode: KeyMode
    region: str
    encrypt_key_arn: str = ""
    decrypt_key_arns: tuple[str, ...] = ()
    alias_name: str = ""
    owner_principal_arn: str = ""
    pending_key_arn: str = ""
    claim_token: str = ""
    created_at: int = 0
    key_health: KeyHealth = "AVAILABLE"
    key_health_reason: str = ""
    key_health_since: int = 0
    byok_status: str = ""
    byok_key_arn: str = ""
    byok_reason: str = ""
    rotation_period_days: int = 0
    next_rotation_at: int = 0
    last_rotated_at: int = 0
    last_rotation: str = ""
    erased_at: int = 0
    erasure_hash: str = ""
    compromise_started_at: int = 0
    # Every claim of an unfinished creation: a key tagged with any of them is this org's.
    claim_tokens: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ready(self) -> bool:
        return self.status == "READY"


class RegistryError(OrgKmsError):
    """DynamoDB refused or failed a registry operation."""


class OrgRegistry:
    """Typed access to the registry table through a DynamoDB client."""

    def __init__(self, table_name: str, dynamodb: Any, clock: Callable[[], float] = time.time):
        self._table = table_name
        self._ddb = dynamodb
        self._clock = clock

    def get(self, org_id: str) -> OrgRecord | None:
        try:
            item = self._ddb.get_item(
                TableName=self._table, Key=_key(org_id), ConsistentRead=True
            ).get("Item")
        except ClientError as err:
            raise RegistryError(f"reading organization {org_id!r} failed: {_code(err)}") from err
        return _record(item) if item else None

    def claim_creation(
        self,
        org_id: str,
        token: str,
        lease_seconds: int,
        key_mode: KeyMode,
        region: str,
        owner_principal_arn: str | None,
    ) -> bool:
        """Claim the right to create ``org_id``'s key; False if someone else holds a live claim."""
        now = int(self._clock())
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression="SET #s = :creating, keyMode = :mode, #r = :region, "
                "claimToken = :token, claimExpiresAt = :exp, "
                "createdAt = if_not_exists(createdAt, :now)"
                + (", ownerPrincipalArn = :owner" if owner_principal_arn else "")
                + " ADD claimTokens :tokens",
                ConditionExpression="attribute_not_exists(organizationId) OR "
                "(#s = :creating AND claimExpiresAt < :now)",
                ExpressionAttributeNames={"#s": "status", "#r": "region"},
                ExpressionAttributeValues={
                    ":creating": {"S": "CREATING"},
                    ":mode": {"S": key_mode},
                    ":region": {"S": region},
                    ":token": {"S": token},
                    ":tokens": {"SS": [token]},
                    ":exp": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                    **({":owner": {"S": owner_principal_arn}} if owner_principal_arn else {}),
                },
            )
        except ClientError as err:
            if _code(err) == "ConditionalCheckFailedException":
                return False
            raise RegistryError(f"claiming organization {org_id!r} failed: {_code(err)}") from err
        return True

    def record_pending_key(self, org_id: str, token: str, key_arn: str) -> None:
        """Remember the key being set up, so a takeover after a crash adopts it."""
        self._update_claimed(org_id, token, "SET pendingKeyArn = :arn", {":arn": {"S": key_arn}})

    def release_claim(self, org_id: str, token: str) -> None:
        """Let the next delivery take over at once (after a handled failure, not a crash)."""
        self._update_claimed(org_id, token, "SET claimExpiresAt = :zero", {":zero": {"N": "0"}})

    def mark_ready(self, org_id: str, token: str, key_arn: str, alias_name: str) -> None:
        """Finish a claimed creation: the organization encrypts and decrypts with ``key_arn``."""
        self._update_claimed(
            org_id,
            token,
            "SET #s = :ready, encryptKeyArn = :arn, decryptKeyArns = :arns, aliasName = :alias, "
            "updatedAt = :now REMOVE claimToken, claimTokens, claimExpiresAt, pendingKeyArn",
            {
                ":ready": {"S": "READY"},
                ":arn": {"S": key_arn},
                ":arns": {"L": [{"S": key_arn}]},
                ":alias": {"S": alias_name},
                ":now": {"N": str(int(self._clock()))},
            },
        )

    def register_shared(
        self, org_id: str, shared_key_arn: str, region: str, owner_principal_arn: str | None
    ) -> bool:
        """Register an organization on the platform's shared key; False if it already exists."""
        now = str(int(self._clock()))
        item = {
            **_key(org_id),
            "status": {"S": "READY"},
            "keyMode": {"S": "shared"},
            "region": {"S": region},
            "encryptKeyArn": {"S": shared_key_arn},
            "decryptKeyArns": {"L": [{"S": shared_key_arn}]},
            "createdAt": {"N": now},
            "updatedAt": {"N": now},
        }
        if owner_principal_arn:
            item["ownerPrincipalArn"] = {"S": owner_principal_arn}
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(organizationId)",
            )
        except ClientError as err:
            if _code(err) == "ConditionalCheckFailedException":
                return False
            raise RegistryError(
                f"registering organization {org_id!r} failed: {_code(err)}"
            ) from err
        return True

    def set_keys(
        self,
        org_id: str,
        encrypt_key_arn: str,
        decrypt_key_arns: list[str],
        key_mode: KeyMode | None = None,
        alias_name: str | None = None,
    ) -> None:
        """Point a READY organization at other keys (the re-key workflow's steps)."""
        expression = "SET encryptKeyArn = :enc, decryptKeyArns = :dec, updatedAt = :now"
        values: dict[str, Any] = {
            ":enc": {"S": encrypt_key_arn},
            ":dec": {"L": [{"S": arn} for arn in dict.fromkeys(decrypt_key_arns)]},
            ":now": {"N": str(int(self._clock()))},
            ":ready": {"S": "READY"},
        }
        if key_mode:
            expression += ", keyMode = :mode"
            values[":mode"] = {"S": key_mode}
        if alias_name is not None:
            expression += ", aliasName = :alias"
            values[":alias"] = {"S": alias_name}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression=expression,
                ConditionExpression="#s = :ready",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            raise RegistryError(f"updating keys of {org_id!r} failed: {_code(err)}") from err

    def begin_erasure(self, org_id: str) -> None:
        """READY -> ERASING (a repeat on ERASING is allowed: it resumes a crashed erasure)."""
        self._transition(org_id, ("READY", "ERASING"), "ERASING", "SET erasureStartedAt = :now")

    def mark_erased(self, org_id: str, erasure_hash: str) -> None:
        """ERASING -> ERASED, with the hash of the audit entry that records the erasure."""
        self._transition(
            org_id,
            ("ERASING",),
            "ERASED",
            "SET erasedAt = :now, erasureHash = :hash REMOVE nextRotationAt, rotationShard",
            {":hash": {"S": erasure_hash}},
        )

    def cancel_erasure(self, org_id: str) -> None:
        """ERASED or ERASING -> READY (the org's keys were re-enabled)."""
        self._transition(
            org_id,
            ("ERASED", "ERASING"),
            "READY",
            # Back on the rotation index, due at once: the next daily scan confirms its key.
            "SET erasureCancelledAt = :now, nextRotationAt = :now, rotationShard = :shard "
            "REMOVE erasedAt, erasureHash, erasureStartedAt",
            {":shard": {"S": rotation_shard(org_id)}},
        )

    def _transition(
        self,
        org_id: str,
        allowed: tuple[str, ...],
        to: str,
        expression: str,
        values: dict[str, Any] | None = None,
    ) -> None:
        set_part, _, remove_part = expression.partition(" REMOVE ")
        update = f"{set_part}, #s = :to" + (f" REMOVE {remove_part}" if remove_part else "")
        allowed_values = {f":from{i}": {"S": status} for i, status in enumerate(allowed)}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression=update,
                ConditionExpression=f"#s IN ({', '.join(allowed_values)})",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    **allowed_values,
                    ":to": {"S": to},
                    ":now": {"N": str(int(self._clock()))},
                    **(values or {}),
                },
            )
        except ClientError as err:
            raise RegistryError(
                f"organization {org_id!r}: cannot move to {to} from its current status "
                f"({_code(err)})"
            ) from err

    def scan(self) -> Iterator[OrgRecord]:
        """Every organization. For status and reports only: never on an encrypt or decrypt path."""
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                if not item["organizationId"]["S"].startswith(_KEY_GUARD_PREFIX):
                    yield _record(item)

    def set_attributes(
        self, org_id: str, values: dict[str, str | int], remove: tuple[str, ...] = ()
    ) -> None:
        """Set plain attributes of an existing organization (health, BYOK, rotation fields)."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values)))
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(organizationId)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    f":v{i}": _attribute(value) for i, value in enumerate(values.values())
                },
            )
        except ClientError as err:
            raise RegistryError(f"updating organization {org_id!r} failed: {_code(err)}") from err

    def change_key_health(self, org_id: str, health: KeyHealth, reason: str) -> bool:
        """Record the org key's health; True only for the caller that changed it (so exactly one
        process reports each transition)."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression="SET keyHealth = :h, keyHealthReason = :r, keyHealthSince = :now",
                ConditionExpression=(
                    "attribute_exists(organizationId) AND "
                    "(attribute_not_exists(keyHealth) OR keyHealth = :other)"
                    if health == "UNAVAILABLE"
                    else "keyHealth = :other"
                ),
                ExpressionAttributeValues={
                    ":h": {"S": health},
                    ":r": {"S": reason[:500]},
                    ":now": {"N": str(int(self._clock()))},
                    ":other": {"S": "AVAILABLE" if health == "UNAVAILABLE" else "UNAVAILABLE"},
                },
            )
        except ClientError as err:
            if _code(err) == "ConditionalCheckFailedException":
                return False
            raise RegistryError(f"updating organization {org_id!r} failed: {_code(err)}") from err
        return True

    def guard_key(self, key_arn: str, org_id: str) -> str:
        """Reserve ``key_arn`` for ``org_id``; returns the org that holds it (maybe another)."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={**_key(_KEY_GUARD_PREFIX + key_arn), "ownerOrganizationId": {"S": org_id}},
                ConditionExpression="attribute_not_exists(organizationId) OR "
                "ownerOrganizationId = :org",
                ExpressionAttributeValues={":org": {"S": org_id}},
            )
        except ClientError as err:
            if _code(err) != "ConditionalCheckFailedException":
                raise RegistryError(f"reserving {key_arn} failed: {_code(err)}") from err
            item = self._ddb.get_item(
                TableName=self._table, Key=_key(_KEY_GUARD_PREFIX + key_arn), ConsistentRead=True
            ).get("Item", {})
            return str(item.get("ownerOrganizationId", {}).get("S", ""))
        return org_id

    def release_key_guard(self, key_arn: str, org_id: str) -> None:
        """Free a reservation made by :meth:`guard_key` for ``org_id`` (no-op if not its own)."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=_key(_KEY_GUARD_PREFIX + key_arn),
                ConditionExpression="ownerOrganizationId = :org",
                ExpressionAttributeValues={":org": {"S": org_id}},
            )
        except ClientError as err:
            if _code(err) != "ConditionalCheckFailedException":
                raise RegistryError(f"releasing {key_arn} failed: {_code(err)}") from err

    def due_for_rotation(self, shard: int, now: int) -> Iterator[str]:
        """Ids of organizations in ``shard`` whose rotation is due (the sparse rotation index)."""
        paginator = self._ddb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            IndexName="RotationDue",
            KeyConditionExpression="rotationShard = :shard AND nextRotationAt <= :now",
            ExpressionAttributeValues={":shard": {"S": str(shard)}, ":now": {"N": str(now)}},
            ProjectionExpression="organizationId",
        )
        for page in pages:
            for item in page.get("Items", []):
                yield str(item["organizationId"]["S"])

    def _update_claimed(
        self, org_id: str, token: str, expression: str, values: dict[str, Any]
    ) -> None:
        names = {"#s": "status"} if "#s" in expression else {}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=_key(org_id),
                UpdateExpression=expression,
                ConditionExpression="claimToken = :token",
                ExpressionAttributeValues={**values, ":token": {"S": token}},
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as err:
            raise RegistryError(
                f"organization {org_id!r}: claim lost or update refused ({_code(err)})"
            ) from err


def _key(org_id: str) -> dict[str, Any]:
    return {"organizationId": {"S": org_id}}


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


def rotation_shard(org_id: str) -> str:
    """The rotation-index shard of an organization: stable, spread evenly."""
    import zlib

    return str(zlib.crc32(org_id.encode()) % ROTATION_SHARDS)


def _attribute(value: str | int) -> dict[str, str]:
    return {"N": str(value)} if isinstance(value, int) else {"S": value}


def _record(item: dict[str, Any]) -> OrgRecord:
    def s(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def n(name: str) -> int:
        return int(item.get(name, {}).get("N", 0))

    return OrgRecord(
        org_id=s("organizationId"),
        status=s("status"),  # type: ignore[arg-type]
        key_mode=s("keyMode") or "dedicated",  # type: ignore[arg-type]
        region=s("region"),
        encrypt_key_arn=s("encryptKeyArn"),
        decrypt_key_arns=tuple(v["S"] for v in item.get("decryptKeyArns", {}).get("L", [])),
        alias_name=s("aliasName"),
        owner_principal_arn=s("ownerPrincipalArn"),
        pending_key_arn=s("pendingKeyArn"),
        claim_token=s("claimToken"),
        created_at=n("createdAt"),
        key_health=s("keyHealth") or "AVAILABLE",  # type: ignore[arg-type]
        key_health_reason=s("keyHealthReason"),
        key_health_since=n("keyHealthSince"),
        byok_status=s("byokStatus"),
        byok_key_arn=s("byokKeyArn"),
        byok_reason=s("byokReason"),
        rotation_period_days=n("rotationPeriodDays"),
        next_rotation_at=n("nextRotationAt"),
        last_rotated_at=n("lastRotatedAt"),
        last_rotation=s("lastRotation"),
        erased_at=n("erasedAt"),
        erasure_hash=s("erasureHash"),
        compromise_started_at=n("compromiseStartedAt"),
        claim_tokens=tuple(sorted(item.get("claimTokens", {}).get("SS", []))),
    )
