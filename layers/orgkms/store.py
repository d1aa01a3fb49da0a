"""Organization data in S3: ``orgs/<org>/<name>``, each object an Encryption SDK message.

Object metadata names the key ARN the object was encrypted under and the format version, so a
re-key can select objects by key without downloading them.
"""

import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from botocore.exceptions import ClientError

from orgkms.audit import record_quietly
from orgkms.envelope import OrgEnvelope
from orgkms.errors import DecryptionRefused, OrgKmsError
from orgkms.ids import org_prefix, validate_data_type, validate_org_id

FORMAT_VERSION = "esdk-v1"
META_KEY_ARN = "orgkms-key-arn"
META_FORMAT = "orgkms-format"
META_DATA_TYPE = "orgkms-data-type"
MAX_NAME_LENGTH = 512


class ObjectNotFound(OrgKmsError):
    """No object of that name for that organization."""


@dataclass(frozen=True)
class StoredObject:
    org_id: str
    name: str
    s3_key: str
    key_arn: str
    data_type: str
    size: int
    sse_key_arn: str = ""  # the SSE-KMS key of an object S3 encrypts itself, if any


class OrgStore:
    """Put and get organizations' files, encrypted client-side, streaming both ways."""

    def __init__(self, envelope: OrgEnvelope, s3: Any, bucket: str, audit: Any = None) -> None:
        self._envelope = envelope
        self._s3 = s3
        self._bucket = bucket
        self._audit = audit

    def put(
        self, org_id: str, data_type: str, name: str, source: IO[bytes], length: int | None = None
    ) -> StoredObject:
        """Encrypt ``source`` and store it as ``name``; memory stays bounded for any size."""
        key = object_key(org_id, name)
        validate_data_type(data_type)
        reader, key_arn = self._envelope.open_encrypting_reader(org_id, data_type, source, length)
        with reader:
            self._s3.upload_fileobj(
                reader,
                self._bucket,
                key,
                ExtraArgs={
                    "ContentType": "application/vnd.aws-encryption-sdk",
                    "Metadata": {
                        META_KEY_ARN: key_arn,
                        META_FORMAT: FORMAT_VERSION,
                        META_DATA_TYPE: data_type,
                    },
                },
            )
        head = self._s3.head_object(Bucket=self._bucket, Key=key)
        return StoredObject(org_id, name, key, key_arn, data_type, int(head["ContentLength"]))

    def get(self, org_id: str, name: str, sink: IO[bytes], data_type: str | None = None) -> None:
        """Decrypt object ``name`` of ``org_id`` into ``sink``."""
        key = object_key(org_id, name)
        self._envelope.record(org_id)  # an erased or unknown org is refused before S3 is read
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectNotFound(f"organization {org_id!r} has no object {name!r}") from None
            raise
        try:
            with body:
                self._envelope.decrypt_stream(org_id, body, sink, data_type)
        except DecryptionRefused:
            record_quietly(self._audit, org_id, "decrypt-refused", name=name, s3Key=key)
            raise

    def get_to_file(self, org_id: str, name: str, path: str, data_type: str | None = None) -> None:
        """Decrypt into ``path`` through a temporary file: nothing is left behind on refusal."""
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".orgkms-")
        try:
            with os.fdopen(fd, "wb") as sink:
                self.get(org_id, name, sink, data_type)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def list(self, org_id: str) -> list[StoredObject]:
        """The organization's objects (names and sizes; metadata read per object)."""
        prefix = org_prefix(validate_org_id(org_id))
        found = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                head = self._s3.head_object(Bucket=self._bucket, Key=entry["Key"])
                meta = head.get("Metadata", {})
                found.append(
                    StoredObject(
                        org_id=org_id,
                        name=entry["Key"][len(prefix) :],
                        s3_key=entry["Key"],
                        key_arn=meta.get(META_KEY_ARN, ""),
                        data_type=meta.get(META_DATA_TYPE, ""),
                        size=int(entry["Size"]),
                        sse_key_arn=str(head.get("SSEKMSKeyId", "")),
                    )
                )
        return found


def object_key(org_id: str, name: str) -> str:
    """The S3 key of ``name``; refuses names that could leave the organization's prefix."""
    validate_org_id(org_id)
    parts = name.split("/")
    if (
        not name
        or len(name) > MAX_NAME_LENGTH
        or name.startswith("/")
        or any(part in {"", ".", ".."} for part in parts)
        or any(ord(c) < 32 for c in name)
    ):
        raise ValueError(f"invalid object name {name!r}: use a relative path without '..'")
    return org_prefix(org_id) + name
