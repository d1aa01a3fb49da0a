"""The event contract: control-plane events in, result events out.

Models are parsed with Powertools' parser. ``python -m orgkms.models`` writes their JSON Schemas.
"""

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orgkms.ids import ORG_ID_PATTERN

CONTROL_PLANE_SOURCE = "saas.control-plane"
# Source of the rotate-due messages orgkms's daily scanner queues itself.
ROTATION_SCANNER_SOURCE = "orgkms.rotation-scanner"
RESULT_SOURCE = "orgkms"
MAX_DETAIL_BYTES = 8 * 1024

ACCOUNT_PRINCIPAL_ARN = (
    r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(root|(role|user)/[A-Za-z0-9+=,.@_/-]{1,512})$"
)
KEY_ARN_PATTERN = r"^arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"
# KMS's range for an automatic rotation period; orgkms's default is a year.
MIN_ROTATION_DAYS, MAX_ROTATION_DAYS, DEFAULT_ROTATION_DAYS = 90, 2560, 365


class _Detail(BaseModel):
    # Unknown fields are ignored so that a control plane may add fields before orgkms reads them.
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class OrgCreated(_Detail):
    """detail-type ``org-created``: give the organization a key."""

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    owner_principal_arn: str | None = Field(
        default=None, alias="ownerPrincipalArn", pattern=ACCOUNT_PRINCIPAL_ARN
    )
    region: str | None = Field(default=None, pattern=REGION_PATTERN)
    key_mode: Literal["dedicated", "shared"] = Field(default="dedicated", alias="keyMode")
    rotation_period_days: int | None = Field(
        default=None, alias="rotationPeriodDays", ge=MIN_ROTATION_DAYS, le=MAX_ROTATION_DAYS
    )


class OrgKeyReady(_Detail):
    """Result ``org-key-ready``: the organization can encrypt."""

    organization_id: str = Field(alias="organizationId")
    key_arn: str = Field(alias="keyArn")
    alias_name: str | None = Field(default=None, alias="aliasName")
    key_mode: Literal["dedicated", "shared", "customer"] = Field(alias="keyMode")
    region: str


class EventRejected(_Detail):
    """Result ``event-rejected``: a control-plane event that can never succeed, and why."""

    reason: str
    message_id: str = Field(alias="messageId")
    detail_type: str | None = Field(default=None, alias="detailType")
    organization_id: str | None = Field(default=None, alias="organizationId")


class MigrationRequest(BaseModel):
    """detail-type ``migration-requested``, and the re-key workflow's execution input."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    target_key_arn: str | None = Field(default=None, alias="targetKeyArn", pattern=KEY_ARN_PATTERN)
    reason: str | None = Field(default=None, max_length=500)
    deletion_window_days: int = Field(default=30, ge=7, le=30, alias="deletionWindowDays")
    noncurrent_versions: Literal["report", "delete"] = Field(
        default="report", alias="noncurrentVersions"
    )
    cache_drain_seconds: int | None = Field(default=None, ge=0, le=3600, alias="cacheDrainSeconds")
    # Why the data moves: "byok" makes the org customer-managed at the switch; "compromise" and
    # "rotation" move it onto a new key of its own, "compromise" disabling the old key at once.
    purpose: Literal["rekey", "byok", "compromise", "rotation"] = "rekey"


class ByokRequested(_Detail):
    """detail-type ``byok-requested``: move an organization onto its customer's own key.

    ``keyArn`` is checked by orgkms (not by the schema) so that a bad one is answered with a
    ``byok-rejected`` event saying why, rather than dead-lettered.
    """

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    key_arn: str = Field(alias="keyArn", max_length=2048)


class RotateDue(_Detail):
    """detail-type ``rotate-due``: rotate (or confirm rotation of) an organization's key."""

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    on_demand: bool = Field(default=False, alias="onDemand")
    rekey: bool = False
    # Set by orgkms's own daily scanner: the rotation is skipped if no longer due (a repeat).
    scheduled: bool = False


class KeyCompromised(_Detail):
    """detail-type ``key-compromised``: new org key, re-key onto it, retire the old one."""

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    reason: str | None = Field(default=None, max_length=500)
    deletion_window_days: int = Field(default=7, ge=7, le=30, alias="deletionWindowDays")
    # The versions a rewrite leaves behind are copies under the compromised key: deleted by
    # default so the key can be destroyed. "report" keeps them (the key is then disabled only).
    noncurrent_versions: Literal["report", "delete"] = Field(
        default="delete", alias="noncurrentVersions"
    )


class ByokResult(_Detail):
    """Results ``byok-accepted`` and ``byok-rejected`` (with the reason and the fix)."""

    organization_id: str = Field(alias="organizationId")
    key_arn: str = Field(default="", alias="keyArn")
    reason: str = ""
    fix: str = ""
    execution: str = ""


class KeyRotated(_Detail):
    """Result ``key-rotated``: what rotation did (or found) for one organization's key."""

    organization_id: str = Field(alias="organizationId")
    key_arn: str = Field(alias="keyArn")
    key_mode: str = Field(alias="keyMode")
    action: Literal[
        "rotated-on-demand", "automatic-confirmed", "customer-reported", "not-applicable", "rekey"
    ]
    rotation_enabled: bool | None = Field(default=None, alias="rotationEnabled")
    period_days: int | None = Field(default=None, alias="periodDays")
    note: str = ""


class KeyHealthChanged(_Detail):
    """Results ``key-unavailable`` and ``key-restored``."""

    organization_id: str = Field(alias="organizationId")
    key_arn: str = Field(default="", alias="keyArn")
    reason: str = ""


class MigrationResult(_Detail):
    """Results ``migration-completed`` and ``migration-failed``."""

    organization_id: str = Field(alias="organizationId")
    status: str = ""
    execution: str = ""
    target_key_arn: str = Field(default="", alias="targetKeyArn")
    done: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    reason: str = ""
    retired: list[dict[str, Any]] = Field(default_factory=list)


class OrgErasureRequest(BaseModel):
    """detail-type ``org-erasure-requested``: erase the organization (right to erasure)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    organization_id: str = Field(alias="organizationId", pattern=ORG_ID_PATTERN)
    deletion_window_days: int = Field(default=30, ge=7, le=30, alias="deletionWindowDays")
    force: bool = False
    reason: str | None = Field(default=None, max_length=500)


class OrgErasureResult(_Detail):
    """Results ``org-erased`` (the receipt's summary) and ``org-erasure-failed``."""

    organization_id: str = Field(alias="organizationId")
    status: str = ""
    reason: str = ""
    keys: list[dict[str, Any]] = Field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    versions: int = 0
    residue_versions: int = Field(default=0, alias="residueVersions")
    audit_entry_hash: str = Field(default="", alias="auditEntryHash")


# detail-type -> model of the control-plane events orgkms consumes.
CONTROL_PLANE_EVENTS: dict[str, type[BaseModel]] = {
    "org-created": OrgCreated,
    "migration-requested": MigrationRequest,
    "byok-requested": ByokRequested,
    "rotate-due": RotateDue,
    "key-compromised": KeyCompromised,
    "org-erasure-requested": OrgErasureRequest,
}
RESULT_EVENTS: dict[str, type[BaseModel]] = {
    "org-key-ready": OrgKeyReady,
    "event-rejected": EventRejected,
    "migration-completed": MigrationResult,
    "migration-failed": MigrationResult,
    "byok-accepted": ByokResult,
    "byok-rejected": ByokResult,
    "key-rotated": KeyRotated,
    "key-unavailable": KeyHealthChanged,
    "key-restored": KeyHealthChanged,
    "key-compromise-started": MigrationResult,
    "org-erased": OrgErasureResult,
    "org-erasure-failed": OrgErasureResult,
}


def control_plane_entry(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry as the control plane sends it (EventBusName left to the caller)."""
    return {"Source": CONTROL_PLANE_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail)}


def write_schemas(folder: Path) -> list[Path]:
    """Write one JSON Schema per event detail into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for detail_type, model in {**CONTROL_PLANE_EVENTS, **RESULT_EVENTS}.items():
        path = folder / f"{detail_type}.schema.json"
        schema = model.model_json_schema(by_alias=True)
        schema["title"] = detail_type
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        sys.stdout.write(f"{written_path}\n")
