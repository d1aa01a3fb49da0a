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

    Linear in organizations plus objects; reads metadata only, never calls KMS.
    """
    exposure: dict[str, KeyExposure] = defaultdict(lambda: KeyExposure(""))
    for record in records:
        for arn in dict.fromkeys([*record.decrypt_key_arns, record.encrypt_key_arn]):
            if arn:
                entry = exposure[arn]
                entry.key_arn = arn
                entry.orgs.append(record.org_id)
    for obj in objects:
        if obj.key_arn in exposure:
            exposure[obj.key_arn].objects += 1
            exposure[obj.key_arn].bytes += obj.size
    return dict(exposure)
