"""Portable export of an organization's data (GDPR right to data portability).

``DIR/objects/<name>`` holds each object exactly as stored: an AWS Encryption SDK message, which
anyone allowed to use the key ARN in ``manifest.json`` can decrypt with any Encryption SDK, without
orgkms. The manifest lists names, stored and plaintext sizes, the SHA-256 of each plaintext, the
key ARN and the encryption context. Each object is decrypted once while exporting, so the
manifest's digests are proven, not copied; plaintext never touches the disk.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orgkms.audit import record_quietly
from orgkms.envelope import ALGORITHM
from orgkms.ids import org_prefix, validate_org_id
from orgkms.store import META_KEY_ARN, object_key

MANIFEST = "manifest.json"
OBJECTS_FOLDER = "objects"


class _Digest:
    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    manifest: dict[str, Any]


def export_org(
    org_id: str,
    folder: Path,
    envelope: Any,
    s3: Any,
    bucket: str,
    audit: Any = None,
) -> ExportResult:
    """Write ``org_id``'s current objects and the manifest into ``folder`` (new or empty)."""
    validate_org_id(org_id)
    envelope.record(org_id)  # an unknown or erased org is refused before anything is written
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: export into a new folder")
    objects_dir = folder / OBJECTS_FOLDER
    objects_dir.mkdir(parents=True, exist_ok=True)

    entries, skipped = [], []
    for key in _current_keys(s3, bucket, org_id):
        entry = _export_object(org_id, key, envelope, s3, bucket, objects_dir)
        if entry is None:
            skipped.append(key[len(org_prefix(org_id)) :])
        else:
            entries.append(entry)
    manifest = {
        "organizationId": org_id,
        "exportedAt": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds"),
        "format": "AWS Encryption SDK message (version 2, framed)",
        "algorithmSuite": ALGORITHM.name,
        "keyArns": sorted({e["keyArn"] for e in entries}),
        "objects": entries,
        "skipped": [{"name": n, "why": "not an Encryption SDK message"} for n in skipped],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    record_quietly(
        audit,
        org_id,
        "exported",
        objects=len(entries),
        bytes=sum(e["storedBytes"] for e in entries),
        keyArns=manifest["keyArns"],
    )
    return ExportResult(folder, manifest)


def _current_keys(s3: Any, bucket: str, org_id: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=org_prefix(org_id)
    ):
        keys += [entry["Key"] for entry in page.get("Contents", [])]
    return keys


def _export_object(
    org_id: str, key: str, envelope: Any, s3: Any, bucket: str, objects_dir: Path
) -> dict[str, Any] | None:
    name = key[len(org_prefix(org_id)) :]
    object_key(org_id, name)  # refuses names that could leave the export folder
    response = s3.get_object(Bucket=bucket, Key=key)
    if META_KEY_ARN not in response.get("Metadata", {}):
        response["Body"].close()
        return None
    target = objects_dir / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, response["Body"] as body:
        while chunk := body.read(1 << 20):
            out.write(chunk)
    digest = _Digest()
    with target.open("rb") as stored:
        context = envelope.decrypt_stream(org_id, stored, digest)
    return {
        "name": name,
        "path": f"{OBJECTS_FOLDER}/{name}",
        "storedBytes": target.stat().st_size,
        "plaintextBytes": digest.size,
        "plaintextSha256": digest.sha256.hexdigest(),
        "keyArn": response.get("Metadata", {}).get(META_KEY_ARN, ""),
        "encryptionContext": context,
    }
