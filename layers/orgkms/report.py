"""Read-only views over the registry and the bucket: per-org inventory and blast radius."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orgkms.registry import OrgRecord
from orgkms.store import StoredObject


@dataclass
class OrgInventory:
    record: OrgRecord
    objects: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "organizationId": r.org_id,
            "status": r.status,
            "keyMode": r.key_mode,
            "region": r.region,
            "keyArn": r.encrypt_key_arn,
            "aliasName": r.alias_name,
            "objects": self.objects,
            "bytes": self.bytes,
        }


@dataclass
class KeyExposure:
    """What someone holding one key could read."""

    key_arn: str
    orgs: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "keyArn": self.key_arn,
            "organizations": self.orgs,
            "objects": self.objects,
            "bytes": self.bytes,
        }


def inventory(records: Iterable[OrgRecord], objects: Iterable[StoredObject]) -> list[OrgInventory]:
    by_org = {r.org_id: OrgInventory(r) for r in records}
    for obj in objects:
        entry = by_org.get(obj.org_id)
        if entry is not None:
            entry.objects += 1
            entry.bytes += obj.size
    return sorted(by_org.values(), key=lambda e: e.record.org_id)


def blast_radius(
    records: Iterable[OrgRecord], objects: Iterable[StoredObject]
) -> dict[str, KeyExposure]:
    """Per key ARN: the organizations whose decrypt list holds it, and the objects under it.

    An object counts under the key its ``orgkms-key-arn`` metadata names, or, for an object S3
    encrypts itself, its SSE-KMS key; a key no registry record names any more (an old key still
    protecting objects) is listed with the organizations whose objects it protects. Linear in
    organizations plus objects; reads metadata only, never calls KMS.
    """
    exposure: dict[str, KeyExposure] = {}
    members: dict[str, set[str]] = defaultdict(set)

    def add_org(arn: str, org_id: str) -> KeyExposure:
        entry = exposure.get(arn)
        if entry is None:
            entry = exposure[arn] = KeyExposure(arn)
        if org_id not in members[arn]:
            members[arn].add(org_id)
            entry.orgs.append(org_id)
        return entry

    for record in records:
        for arn in dict.fromkeys([*record.decrypt_key_arns, record.encrypt_key_arn]):
            if arn:
                add_org(arn, record.org_id)
    for obj in objects:
        arn = obj.key_arn or obj.sse_key_arn
        if arn:
            entry = exposure.get(arn) or add_org(arn, obj.org_id)
            entry.objects += 1
            entry.bytes += obj.size
    return exposure


def select_exposures(
    exposures: dict[str, KeyExposure],
    records: Iterable[OrgRecord],
    key_arn: str | None = None,
    org_id: str | None = None,
) -> list[KeyExposure]:
    """The exposure of one key, of every key an organization uses, or of every key."""
    if key_arn:
        return [exposures.get(key_arn) or KeyExposure(key_arn)]
    if org_id:
        keys = [
            arn
            for record in records
            if record.org_id == org_id
            for arn in dict.fromkeys([record.encrypt_key_arn, *record.decrypt_key_arns])
            if arn
        ]
        return [exposures.get(arn) or KeyExposure(arn) for arn in keys]
    return sorted(exposures.values(), key=lambda e: (-len(e.orgs), -e.objects, e.key_arn))


def breach_comparison(
    exposures: dict[str, KeyExposure],
    shared_key_arn: str,
    value_per_org: float | None = None,
) -> dict[str, Any]:
    """What one breach exposes: every org on one shared key (the legacy design), the shared key
    as it is used now, and the largest single org key, in orgs, objects, bytes and value."""

    def figures(orgs: int, objects: int, size: int, key_arn: str = "") -> dict[str, Any]:
        row: dict[str, Any] = {"keyArn": key_arn, "orgs": orgs, "objects": objects, "bytes": size}
        if value_per_org is not None:
            row["value"] = orgs * value_per_org
        return row

    all_orgs = {org for e in exposures.values() for org in e.orgs}
    shared = exposures.get(shared_key_arn) or KeyExposure(shared_key_arn)
    org_keys = [e for arn, e in exposures.items() if arn != shared_key_arn]
    largest = max(org_keys, key=lambda e: (e.bytes, e.objects), default=KeyExposure(""))
    everything = figures(
        len(all_orgs),
        sum(e.objects for e in exposures.values()),
        sum(e.bytes for e in exposures.values()),
        shared_key_arn,
    )
    worst_org_key = figures(len(largest.orgs), largest.objects, largest.bytes, largest.key_arn)
    document: dict[str, Any] = {
        "allOrgsOnSharedKey": everything,
        "sharedKeyNow": figures(len(shared.orgs), shared.objects, shared.bytes, shared_key_arn),
        "largestOrgKey": worst_org_key,
    }
    if value_per_org is not None:
        document["valuePerOrg"] = value_per_org
        document["valueProtected"] = everything["value"] - worst_org_key["value"]
    return document
