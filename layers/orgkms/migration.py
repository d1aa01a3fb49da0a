"""The re-key workflow's steps: move one organization's data from source keys to a target key.

Each step is one Lambda invocation driven by ``statemachines/migration.asl.json``; the state
between steps is a small constant-size document, the progress lives in a DynamoDB checkpoint.

1. prepare: validate the request, take the org's migration lock, ensure the target key;
2. open_dual: new writes go under the target only, reads accept sources and target;
3. reencrypt_page (looped): a page of objects, re-encrypted with bounded concurrency;
4. validate_page (looped): every object is under the target alone and its data key opens with it;
5. switch: the target becomes the only key; old keys no one uses any more are retired;
   fail: on any error, the org stays readable under all its keys and the reason is recorded.

Writers during the window write under the target (so the batch converges); readers accept both
keys, so neither ever fails. A rewrite that races a writer is undone (its version deleted), so a
writer's newer version always stays current.
"""

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError

from orgkms.audit import record_quietly
from orgkms.bus import ResultPublisher
from orgkms.checkpoint import Checkpoint, CheckpointStore, MigrationRefused
from orgkms.envelope import OrgEnvelope
from orgkms.errors import DecryptionRefused, KeyUnavailable
from orgkms.ids import org_alias_name, org_prefix
from orgkms.keys import OrgKeyService
from orgkms.models import MigrationRequest, MigrationResult
from orgkms.observability import SERVICE
from orgkms.registry import OrgRecord, OrgRegistry
from orgkms.store import FORMAT_VERSION, META_FORMAT, META_KEY_ARN

logger = Logger(service=SERVICE, child=True)

PAGE_SIZE = 200
WORKERS = 8
SPOOL_BYTES = 8 * 1024 * 1024
MULTIPART_COPY_THRESHOLD = 5 * 1024**3  # CopyObject's limit
COPY_PART_BYTES = 512 * 1024**2
UPLOAD_PART_BYTES = 8 * 1024 * 1024


class TransientMigrationError(Exception):
    """Throttling or a passing AWS fault: the state machine retries the step with backoff."""


@dataclass(frozen=True)
class MigrationConfig:
    shared_key_arn: str
    cache_max_age_seconds: int
    page_size: int = PAGE_SIZE
    workers: int = WORKERS
    multipart_copy_threshold: int = MULTIPART_COPY_THRESHOLD
    copy_part_bytes: int = COPY_PART_BYTES

    @classmethod
    def from_env(cls, shared_key_arn: str, cache_max_age_seconds: int) -> "MigrationConfig":
        """Tunables from ``ORGKMS_MIGRATION_*`` variables (tests lower the copy threshold)."""
        env = os.environ
        return cls(
            shared_key_arn=shared_key_arn,
            cache_max_age_seconds=cache_max_age_seconds,
            page_size=int(env.get("ORGKMS_MIGRATION_PAGE_SIZE", PAGE_SIZE)),
            workers=int(env.get("ORGKMS_MIGRATION_WORKERS", WORKERS)),
            multipart_copy_threshold=int(
                env.get("ORGKMS_MIGRATION_MULTIPART_COPY_THRESHOLD", MULTIPART_COPY_THRESHOLD)
            ),
            copy_part_bytes=int(env.get("ORGKMS_MIGRATION_COPY_PART_BYTES", COPY_PART_BYTES)),
        )


class MigrationService:
    """The workflow's steps. Every method takes and returns the small state document."""

    def __init__(
        self,
        *,
        registry: OrgRegistry,
        checkpoints: CheckpointStore,
        keys: OrgKeyService,
        envelope: OrgEnvelope,
        s3: Any,
        bucket: str,
        kms_for_region: Callable[[str], Any],
        publisher: ResultPublisher,
        config: MigrationConfig,
        sfn: Any = None,
        audit: Any = None,
    ) -> None:
        self._registry = registry
        self._checkpoints = checkpoints
        self._keys = keys
        self._envelope = envelope
        self._s3 = s3
        self._bucket = bucket
        self._kms_for_region = kms_for_region
        self._publisher = publisher
        self._config = config
        self._sfn = sfn
        self._audit = audit
        self._validators: dict[tuple[str, str], OrgEnvelope] = {}

    @classmethod
    def from_platform(cls, platform: Any) -> "MigrationService":
        from orgkms.lifecycle import key_service

        settings = platform.settings
        return cls(
            registry=platform.registry,
            checkpoints=platform.checkpoints,
            keys=key_service(platform),
            envelope=platform.envelope,
            s3=platform.client("s3"),
            bucket=settings.data_bucket,
            kms_for_region=lambda region: platform.client("kms", region),
            publisher=ResultPublisher(platform.client("events"), settings.event_bus_name),
            sfn=platform.client("stepfunctions"),
            audit=platform.audit,
            config=MigrationConfig.from_env(
                settings.shared_key_arn, int(settings.cache.max_age_seconds)
            ),
        )

    # ------------------------------------------------------------------ steps

    def prepare(self, execution: str, raw: dict[str, Any]) -> dict[str, Any]:
        request = _parse_request(raw)
        org_id = request.organization_id
        record = self._registry.get(org_id)
        if record is None or not record.ready:
            raise MigrationRefused(f"organization {org_id!r} is not registered or not ready")
        if request.target_key_arn and [request.target_key_arn] == [
            record.encrypt_key_arn,
            *[a for a in record.decrypt_key_arns if a != record.encrypt_key_arn],
        ]:
            raise MigrationRefused(
                f"organization {org_id!r} is already on {request.target_key_arn}"
            )
        if (
            request.target_key_arn
            and request.purpose != "byok"
            and self._keys.in_another_account(request.target_key_arn)
        ):
            raise MigrationRefused(
                f"{request.target_key_arn} is a key of another account: a customer's key comes "
                "in through byok-requested, which checks it and reserves it for one organization"
            )
        checkpoint = self._checkpoints.begin_unless_running(org_id, execution, self._is_running)
        if checkpoint.status != "PREPARING":
            return self._state(request, checkpoint)  # a retried prepare of a started migration

        target = request.target_key_arn or self._default_target(
            record, execution, request.purpose, tuple(checkpoint.claims)
        )
        sources = [
            arn
            for arn in dict.fromkeys([record.encrypt_key_arn, *record.decrypt_key_arns])
            if arn != target
        ]
        if not sources:
            raise MigrationRefused(f"organization {org_id!r} is already on {target}")
        self._preflight(org_id, target)

        checkpoint.target_key_arn, checkpoint.source_key_arns = target, sources
        checkpoint.total = self._count_objects(org_id)
        checkpoint.status = "DUAL"
        self._checkpoints.save(checkpoint)
        logger.info(
            "migration prepared",
            extra={
                "org_id": org_id,
                "execution": execution,
                "target_key_arn": target,
                "objects": checkpoint.total,
            },
        )
        return self._state(request, checkpoint)

    def open_dual(self, state: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._own(state)
        self._registry.set_keys(
            checkpoint.org_id,
            checkpoint.target_key_arn,
            [*checkpoint.source_key_arns, checkpoint.target_key_arn],
        )
        checkpoint.status = "REENCRYPTING"
        self._checkpoints.save(checkpoint)
        return {**state, "more": True}

    def reencrypt_page(self, state: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._own(state)
        if (
            checkpoint.target_key_arn
            not in self._envelope.record(checkpoint.org_id).decrypt_key_arns
        ):
            self._envelope.flush(checkpoint.org_id)  # read the dual-phase keys, not a cached set
        keys = self._list_page(checkpoint.org_id, checkpoint.start_after)
        outcomes = self._fan_out(keys, lambda key: self._rekey_object(checkpoint, key))
        for key, (outcome, size) in zip(keys, outcomes, strict=True):
            if outcome == "done":
                checkpoint.done += 1
                checkpoint.bytes += size
            elif outcome == "skipped":
                checkpoint.skipped += 1
            else:
                checkpoint.failed += 1
                checkpoint.failures.append(f"{key}: {outcome}")
        checkpoint.pages += 1
        more = len(keys) == self._config.page_size
        checkpoint.start_after = keys[-1] if more else ""
        if not more:
            checkpoint.status = "VALIDATING"
        self._checkpoints.save(checkpoint)
        logger.info(
            "page re-encrypted",
            extra={
                "org_id": checkpoint.org_id,
                "objects": len(keys),
                "done": checkpoint.done,
                "failed": checkpoint.failed,
            },
        )
        return {**state, "more": more, "valid": True}

    def validate_page(self, state: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._own(state)
        if not checkpoint.validated_at:
            checkpoint.validated_at = time.time()
        target_only = self._target_only_envelope(checkpoint)
        keys = self._list_page(checkpoint.org_id, checkpoint.start_after)
        problems = self._fan_out(
            keys, lambda key: self._validate_object(checkpoint, target_only, state, key)
        )
        bad = [f"{key}: {problem}" for key, problem in zip(keys, problems, strict=True) if problem]
        checkpoint.failures.extend(bad)
        checkpoint.failed += len(bad)
        more = len(keys) == self._config.page_size
        checkpoint.start_after = keys[-1] if more else ""
        if not more:
            self._sweep_noncurrent(checkpoint, state.get("noncurrentVersions", "report"))
        self._checkpoints.save(checkpoint)
        valid = checkpoint.failed == 0
        if not more and not valid:
            raise MigrationRefused(
                f"validation failed for {checkpoint.failed} object(s) of {checkpoint.org_id!r}; "
                f"first: {checkpoint.failures[:3]}"
            )
        return {**state, "more": more, "valid": valid}

    def switch(self, state: dict[str, Any]) -> dict[str, Any]:
        checkpoint = self._own(state)
        org_id, target = checkpoint.org_id, checkpoint.target_key_arn
        if checkpoint.status == "COMPLETED":  # a retried switch whose first attempt committed
            return {**state, "status": "COMPLETED", "retired": checkpoint.retired}
        late = self._late_writes_under_old_keys(checkpoint)
        if late:
            raise MigrationRefused(
                f"{len(late)} object(s) of {org_id!r} were written under an old key after "
                f"validation (first: {late[:3]}); re-run the migration"
            )
        checkpoint.status = "SWITCHING"
        self._checkpoints.save(checkpoint)
        purpose = state.get("purpose", "rekey")
        own_key = self._keys.owns(target, org_id)
        self._registry.set_keys(
            org_id,
            target,
            [target],
            key_mode="customer" if purpose == "byok" else "dedicated",
            alias_name=org_alias_name(org_id) if own_key else "",
        )
        users = self._other_orgs_per_key(org_id)  # one registry scan for every old key
        checkpoint.retired = [
            self._retire(
                checkpoint,
                arn,
                int(state["deletionWindowDays"]),
                users.get(arn, 0),
                compromised=purpose == "compromise",
            )
            for arn in checkpoint.source_key_arns
        ]
        if purpose == "byok":
            self._byok_settled(org_id, target, accepted=True, reason="", execution=state)
        checkpoint.status = "COMPLETED"
        self._checkpoints.save(checkpoint)
        self._envelope.flush(org_id)
        try:
            self._publish("migration-completed", checkpoint)
        except Exception as err:
            logger.warning("migration-completed not published", extra={"error": str(err)})
        logger.info("migration completed", extra={"org_id": org_id, "target_key_arn": target})
        record_quietly(
            self._audit,
            org_id,
            "migrated",
            targetKeyArn=target,
            sourceKeyArns=checkpoint.source_key_arns,
            retired=checkpoint.retired,
            objects=checkpoint.done,
            execution=checkpoint.execution,
        )
        return {**state, "status": "COMPLETED", "retired": checkpoint.retired}

    def fail(self, execution: str, state: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
        """Leave the org readable under every key it had, record why, release the lock."""
        org_id = str(state.get("organizationId", ""))
        reason = _error_text(error)
        checkpoint = self._checkpoints.get(org_id) if org_id else None
        if (
            checkpoint is not None
            and checkpoint.execution == execution
            and checkpoint.status == "COMPLETED"
        ):
            return {"organizationId": org_id, "status": "COMPLETED", "reason": reason}
        if checkpoint is not None and checkpoint.execution != execution:
            checkpoint = None  # another execution holds the org: touch nothing of it
        if checkpoint is not None:
            if checkpoint.status not in ("PREPARING", "DUAL"):
                record = self._registry.get(org_id)
                if record is not None:
                    self._registry.set_keys(
                        org_id,
                        record.encrypt_key_arn,
                        [
                            *record.decrypt_key_arns,
                            *checkpoint.source_key_arns,
                            checkpoint.target_key_arn,
                        ],
                    )
            checkpoint.status, checkpoint.reason = "FAILED", reason
            self._checkpoints.save(checkpoint)
        if state.get("purpose") == "byok" and org_id:
            target = str(state.get("targetKeyArn", ""))
            self._byok_settled(
                org_id,
                target,
                accepted=False,
                reason=reason,
                execution=state,
                held_lock=checkpoint is not None,
            )
        own = checkpoint or Checkpoint(org_id, execution, "REFUSED", reason=reason)
        self._publish("migration-failed", own, org_id=org_id, reason=reason)
        if org_id:
            record_quietly(
                self._audit, org_id, "migration-failed", reason=reason[:500], execution=execution
            )
        logger.error(
            "migration failed", extra={"org_id": org_id, "reason": reason, "execution": execution}
        )
        return {"organizationId": org_id, "status": "FAILED", "reason": reason}

    # ------------------------------------------------------------------ objects

    def _rekey_object(self, checkpoint: Checkpoint, key: str) -> tuple[str, int]:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
            if head.get("Metadata", {}).get(META_FORMAT) == FORMAT_VERSION:
                if head["Metadata"].get(META_KEY_ARN) == checkpoint.target_key_arn:
                    return "skipped", 0
                return self._rekey_envelope_object(checkpoint, key, head)
            if head.get("ServerSideEncryption") == "aws:kms":
                if head.get("SSEKMSKeyId") == checkpoint.target_key_arn:
                    return "skipped", 0
                return self._rekey_sse_object(checkpoint, key, head)
            return "skipped", 0  # not under any KMS key (folder markers, SSE-S3): nothing to move
        except (DecryptionRefused, KeyUnavailable) as err:
            return type(err).__name__, 0
        except OSError as err:  # e.g. no space left for the spool file: this object only
            return f"OSError: {err.strerror or err}", 0
        except ClientError as err:
            if _is_throttle(err):
                raise TransientMigrationError(str(err)) from err
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return "skipped", 0  # deleted meanwhile: nothing left to move
            return err.response.get("Error", {}).get("Code", "ClientError"), 0

    def _rekey_envelope_object(
        self, cp: Checkpoint, key: str, head: dict[str, Any]
    ) -> tuple[str, int]:
        org_id, version = cp.org_id, head.get("VersionId")
        meta = dict(head.get("Metadata", {}))
        data_type = meta.get("orgkms-data-type") or "document"
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as plain:
            original = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=version)["Body"]
            digest = _Hashing(plain)
            with original:
                self._envelope.decrypt_stream(org_id, original, digest, data_type)
            size = plain.tell()
            plain.seek(0)
            reader, key_arn = self._envelope.open_encrypting_reader(org_id, data_type, plain, size)
            if key_arn != cp.target_key_arn:
                raise MigrationRefused(f"{org_id!r} encrypts under {key_arn}, not the target")
            extra = {
                "ContentType": head.get("ContentType", "application/octet-stream"),
                **_preserved(head),
                "Metadata": {**meta, META_KEY_ARN: key_arn},
            }
            extra.update(self._tagging(key, version))
            with reader:
                new_version, conditional = self._upload(key, reader, extra, head.get("ETag"))
        if new_version is None:
            return "skipped", 0  # a writer replaced or deleted the object first: theirs stands
        if not conditional and not self._kept_order(key, version, new_version):
            return "skipped", 0
        check = _Hashing(_Discard())
        body = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=new_version)["Body"]
        with body:
            self._envelope.decrypt_stream(org_id, body, check, data_type)
        if check.hexdigest() != digest.hexdigest():
            return "SHA-256 mismatch after re-encryption", 0
        return "done", size

    def _rekey_sse_object(self, cp: Checkpoint, key: str, head: dict[str, Any]) -> tuple[str, int]:
        version, size = head.get("VersionId"), int(head["ContentLength"])
        before = self._sha256(key, version)
        args: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": cp.target_key_arn,
            "Metadata": head.get("Metadata", {}),
            "ContentType": head.get("ContentType", "application/octet-stream"),
        }
        tagging = self._tagging(key, version)
        if size <= self._config.multipart_copy_threshold:
            new_version = self._s3.copy_object(
                **args,
                CopySource={"Bucket": self._bucket, "Key": key, "VersionId": version},
                MetadataDirective="REPLACE",
                TaggingDirective="REPLACE",
                Tagging=tagging.get("Tagging", ""),
            ).get("VersionId")
        else:
            new_version = self._multipart_copy(args, tagging, key, version, size)
        if not self._kept_order(key, version, new_version):
            return "skipped", 0
        if self._sha256(key, new_version) != before:
            return "SHA-256 mismatch after copy", 0
        return "done", size

    def _multipart_copy(
        self,
        args: dict[str, Any],
        tagging: dict[str, str],
        key: str,
        version: str | None,
        size: int,
    ) -> str | None:
        upload = self._s3.create_multipart_upload(**args, **tagging)
        parts, part = [], self._config.copy_part_bytes
        try:
            for number, start in enumerate(range(0, size, part), start=1):
                result = self._s3.upload_part_copy(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    CopySource={"Bucket": self._bucket, "Key": key, "VersionId": version},
                    CopySourceRange=f"bytes={start}-{min(start + part, size) - 1}",
                )
                parts.append({"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]})
            done = self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
            return done.get("VersionId")
        except BaseException:
            self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload["UploadId"]
            )
            raise

    def _upload(
        self, key: str, reader: Any, extra: dict[str, Any], read_etag: str | None
    ) -> tuple[str | None, bool]:
        """Upload from an encrypting reader; returns the new version's id (which upload_fileobj
        would hide) and whether S3 checked that the object was still the one read.

        A single-part rewrite is a conditional PutObject (If-Match the ETag read): a writer's
        newer version or a deletion makes it fail, and (None, True) is returned. A multipart
        rewrite is checked afterwards against the version list instead.
        """
        first = reader.read(UPLOAD_PART_BYTES)
        following = reader.read(UPLOAD_PART_BYTES)
        if not following:
            try:
                put = self._s3.put_object(
                    Bucket=self._bucket, Key=key, Body=first, IfMatch=read_etag or "*", **extra
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in {
                    "PreconditionFailed",
                    "NoSuchKey",
                    "412",
                    "404",
                    "ConditionalRequestConflict",
                }:
                    return None, True
                raise
            return put.get("VersionId"), True
        upload = self._s3.create_multipart_upload(Bucket=self._bucket, Key=key, **extra)
        parts, number, chunk = [], 1, first
        try:
            while chunk:
                etag = self._s3.upload_part(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    Body=chunk,
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
                chunk, following = following, reader.read(UPLOAD_PART_BYTES) if following else b""
                number += 1
            done = self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload["UploadId"],
                MultipartUpload={"Parts": parts},
            )
            return done.get("VersionId"), False
        except BaseException:
            self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload["UploadId"]
            )
            raise

    def _kept_order(self, key: str, read_version: str | None, new_version: str | None) -> bool:
        """Our rewrite must sit right on top of the version we read; else a writer came between
        and our version is deleted, so the writer's stays current. S3 lists a key's versions
        newest first."""
        listed = self._s3.list_object_versions(Bucket=self._bucket, Prefix=key)
        versions = [v for v in listed.get("Versions", []) if v["Key"] == key]
        ordered = [v["VersionId"] for v in versions]
        read_at = next(
            (v["LastModified"] for v in versions if v["VersionId"] == read_version), None
        )
        deleted_since_read = any(
            m["Key"] == key and read_at is not None and m["LastModified"] >= read_at
            for m in listed.get("DeleteMarkers", [])
        )
        if (
            not deleted_since_read
            and new_version in ordered
            and ordered.index(new_version) + 1 < len(ordered)
            and ordered[ordered.index(new_version) + 1] == read_version
        ):
            return True
        self._s3.delete_object(Bucket=self._bucket, Key=key, VersionId=new_version)
        logger.info("rewrite raced a writer; writer's version kept", extra={"s3_key": key})
        return False

    def _validate_object(
        self, cp: Checkpoint, target_only: OrgEnvelope, state: dict[str, Any], key: str
    ) -> str:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if _is_throttle(err):
                raise TransientMigrationError(str(err)) from err
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return ""  # deleted since it was listed
            raise
        if head.get("Metadata", {}).get(META_FORMAT) == FORMAT_VERSION:
            if head["Metadata"].get(META_KEY_ARN) != cp.target_key_arn:
                return "still references an old key"
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
            try:
                target_only.check_header(cp.org_id, body)
            except (DecryptionRefused, KeyUnavailable):
                return "not decryptable with the target key alone"
            finally:
                body.close()
            return ""
        if (
            head.get("ServerSideEncryption") == "aws:kms"
            and head.get("SSEKMSKeyId") != cp.target_key_arn
        ):
            return "SSE-KMS object still under an old key"
        return ""

    def _sweep_noncurrent(self, cp: Checkpoint, mode: str) -> None:
        """Every noncurrent version under the org's prefix still under an old key (deleted
        objects' versions included): counted, or deleted with ``mode == "delete"``."""
        cp.noncurrent_under_old_keys = 0
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=org_prefix(cp.org_id)):
            for version in page.get("Versions", []):
                if version.get("IsLatest"):
                    continue
                key, version_id = version["Key"], version["VersionId"]
                head = self._s3.head_object(Bucket=self._bucket, Key=key, VersionId=version_id)
                used = head.get("Metadata", {}).get(META_KEY_ARN) or head.get("SSEKMSKeyId")
                if used not in cp.source_key_arns:
                    continue
                if mode == "delete":
                    self._s3.delete_object(Bucket=self._bucket, Key=key, VersionId=version_id)
                else:
                    cp.noncurrent_under_old_keys += 1

    def _late_writes_under_old_keys(self, cp: Checkpoint) -> list[str]:
        """Objects written since validation began that are not under the target: an upload
        that took its data key before the dual phase and finished late."""
        since = cp.validated_at - 2  # S3 timestamps have one-second resolution
        late = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=org_prefix(cp.org_id)):
            for entry in page.get("Contents", []):
                if entry["LastModified"].timestamp() < since:
                    continue
                head = self._s3.head_object(Bucket=self._bucket, Key=entry["Key"])
                used = head.get("Metadata", {}).get(META_KEY_ARN) or head.get("SSEKMSKeyId")
                if used in cp.source_key_arns:
                    late.append(entry["Key"])
        return late

    # ------------------------------------------------------------------ keys

    def _byok_settled(
        self,
        org_id: str,
        key_arn: str,
        accepted: bool,
        reason: str,
        execution: dict[str, Any],
        held_lock: bool = False,
    ) -> None:
        """Record and announce the outcome of a BYOK move (best effort: the data is consistent
        either way, and ``orgkms status`` reads the registry).

        A refused move frees the key's reservation only if this execution held the org's lock
        (else another execution may be moving the org onto the key) and the org does not use the
        key (a move that failed after its dual phase leaves the org encrypting under it)."""
        from orgkms.customer_keys import settle_byok
        from orgkms.models import ByokResult

        try:
            settle_byok(
                self._registry,
                self._publisher,
                self._audit,
                ByokResult(
                    organizationId=org_id,
                    keyArn=key_arn,
                    reason=reason,
                    fix="" if accepted else "see the reason; then send byok-requested again",
                    execution=str(execution.get("execution", "")),
                ),
                accepted=accepted,
            )
            if not accepted and key_arn and held_lock:
                record = self._registry.get(org_id)
                if record is None or key_arn not in (
                    record.encrypt_key_arn,
                    *record.decrypt_key_arns,
                ):
                    self._registry.release_key_guard(key_arn, org_id)
        except Exception as err:
            logger.warning("BYOK outcome not recorded", extra={"org_id": org_id, "error": str(err)})

    def _default_target(
        self,
        record: OrgRecord,
        execution: str,
        purpose: str = "rekey",
        earlier_claims: tuple[str, ...] = (),
    ) -> str:
        """The key a migration without ``targetKeyArn`` moves onto: a new org key for a
        compromise or a rotation, else the shared-mode org's own key (made now, or resumed)."""
        if purpose in ("compromise", "rotation"):
            if record.key_mode == "customer":
                raise MigrationRefused(
                    f"organization {record.org_id!r} uses its customer's key: the customer "
                    "replaces it and sends byok-requested with the new key"
                )
        elif record.key_mode != "shared":
            raise MigrationRefused(
                f"organization {record.org_id!r} already has its own key; give targetKeyArn "
                "to re-key it onto another"
            )
        elif record.encrypt_key_arn != self._config.shared_key_arn and self._keys.owns(
            record.encrypt_key_arn, record.org_id
        ):
            return record.encrypt_key_arn  # an earlier run got this far: resume onto its key
        return self._keys.create_migration_target(
            record.org_id,
            record.region,
            record.owner_principal_arn or None,
            execution,
            earlier_claims,
        )

    def _preflight(self, org_id: str, target: str) -> None:
        kms = self._kms_for_region(target.split(":")[3])
        context = {"OrganizationId": org_id, "DataType": "orgkms-preflight"}
        try:
            meta = kms.describe_key(KeyId=target)["KeyMetadata"]
            if (meta.get("KeyState"), meta.get("KeySpec"), meta.get("KeyUsage")) != (
                "Enabled",
                "SYMMETRIC_DEFAULT",
                "ENCRYPT_DECRYPT",
            ):
                raise MigrationRefused(
                    f"target key {target} is {meta.get('KeyState')} {meta.get('KeySpec')} "
                    f"{meta.get('KeyUsage')}; needs Enabled SYMMETRIC_DEFAULT ENCRYPT_DECRYPT"
                )
            blob = kms.generate_data_key(
                KeyId=target, KeySpec="AES_256", EncryptionContext=context
            )["CiphertextBlob"]
            kms.decrypt(CiphertextBlob=blob, KeyId=target, EncryptionContext=context)
        except ClientError as err:
            raise MigrationRefused(
                f"target key {target} is unusable for {org_id!r}: "
                f"{err.response.get('Error', {}).get('Code')}"
            ) from None

    def _other_orgs_per_key(self, org_id: str) -> dict[str, int]:
        """How many organizations other than ``org_id`` can decrypt with each key ARN."""
        users: dict[str, int] = {}
        for record in self._registry.scan():
            if record.org_id != org_id:
                for arn in set(record.decrypt_key_arns):
                    users[arn] = users.get(arn, 0) + 1
        return users

    def _retire(
        self,
        checkpoint: Checkpoint,
        key_arn: str,
        window: int,
        other_users: int,
        compromised: bool = False,
    ) -> dict[str, Any]:
        org_id = checkpoint.org_id
        if key_arn == self._config.shared_key_arn:
            return {
                "keyArn": key_arn,
                "action": "kept",
                "why": f"platform shared key; still used by {other_users} organization(s)",
            }
        if other_users:
            return {
                "keyArn": key_arn,
                "action": "kept",
                "why": f"used by {other_users} other org(s)",
            }
        if not self._keys.owns(key_arn, org_id):
            return {
                "keyArn": key_arn,
                "action": "kept",
                "why": "not a key orgkms made for this org",
            }
        kms = self._kms_for_region(key_arn.split(":")[3])
        if checkpoint.noncurrent_under_old_keys and compromised:
            # A compromised key is switched off now even though noncurrent versions need it:
            # they stay (unreadable) until someone re-enables the key or deletes them.
            if kms.describe_key(KeyId=key_arn)["KeyMetadata"].get("KeyState") == "Enabled":
                kms.disable_key(KeyId=key_arn)
            return {
                "keyArn": key_arn,
                "action": "disabled",
                "why": f"compromised; {checkpoint.noncurrent_under_old_keys} noncurrent object "
                "version(s) still under it, so deletion is not scheduled",
            }
        if checkpoint.noncurrent_under_old_keys:
            return {
                "keyArn": key_arn,
                "action": "kept",
                "why": f"{checkpoint.noncurrent_under_old_keys} noncurrent object version(s) "
                "still under an old key (re-run with noncurrentVersions=delete to remove them)",
            }
        state = kms.describe_key(KeyId=key_arn)["KeyMetadata"].get("KeyState")
        if state == "PendingDeletion":  # a retried switch already retired it
            return {"keyArn": key_arn, "action": "scheduled-deletion", "deletionDate": ""}
        if state != "Disabled":
            kms.disable_key(KeyId=key_arn)
        deletion = kms.schedule_key_deletion(KeyId=key_arn, PendingWindowInDays=window)
        return {
            "keyArn": key_arn,
            "action": "scheduled-deletion",
            "deletionDate": str(deletion.get("DeletionDate", "")),
        }

    def _fan_out(self, keys: list[str], work: Callable[[str], Any]) -> list[Any]:
        """``work`` over a page with bounded concurrency. The first object runs alone, so the
        data-key cache it fills serves the others instead of every worker missing it at once."""
        if not keys:
            return []
        first = work(keys[0])
        with ThreadPoolExecutor(max_workers=self._config.workers) as pool:
            return [first, *pool.map(work, keys[1:])]

    def _target_only_envelope(self, cp: Checkpoint) -> OrgEnvelope:
        """One per org and target for the life of the container, so its cache spans pages."""
        cached = self._validators.get((cp.org_id, cp.target_key_arn))
        if cached is not None:
            return cached
        record = OrgRecord(
            cp.org_id,
            "READY",
            "dedicated",
            cp.target_key_arn.split(":")[3],
            cp.target_key_arn,
            (cp.target_key_arn,),
        )
        envelope = OrgEnvelope(lambda _org: record)
        self._validators[(cp.org_id, cp.target_key_arn)] = envelope
        return envelope

    # ------------------------------------------------------------------ plumbing

    def _is_running(self, execution: str) -> bool:
        from orgkms.aws import execution_running

        return self._sfn is None or execution_running(self._sfn, execution)

    def _own(self, state: dict[str, Any]) -> Checkpoint:
        checkpoint = self._checkpoints.get(str(state["organizationId"]))
        if checkpoint is None or checkpoint.execution != state["execution"]:
            raise MigrationRefused(f"{state['organizationId']!r}: migration lock lost")
        return checkpoint

    def _state(self, request: MigrationRequest, cp: Checkpoint) -> dict[str, Any]:
        drain = request.cache_drain_seconds
        return {
            "organizationId": cp.org_id,
            "execution": cp.execution,
            "targetKeyArn": cp.target_key_arn,
            "cacheDrainSeconds": self._config.cache_max_age_seconds if drain is None else drain,
            "deletionWindowDays": request.deletion_window_days,
            "noncurrentVersions": request.noncurrent_versions,
            "purpose": request.purpose,
            "more": True,
            "valid": True,
        }

    def _list_page(self, org_id: str, start_after: str) -> list[str]:
        args = {
            "Bucket": self._bucket,
            "Prefix": org_prefix(org_id),
            "MaxKeys": self._config.page_size,
        }
        if start_after:
            args["StartAfter"] = start_after
        return [o["Key"] for o in self._s3.list_objects_v2(**args).get("Contents", [])]

    def _count_objects(self, org_id: str) -> int:
        paginator = self._s3.get_paginator("list_objects_v2")
        return sum(
            page.get("KeyCount", 0)
            for page in paginator.paginate(Bucket=self._bucket, Prefix=org_prefix(org_id))
        )

    def _tagging(self, key: str, version: str | None) -> dict[str, str]:
        args = {"Bucket": self._bucket, "Key": key, **({"VersionId": version} if version else {})}
        tags = self._s3.get_object_tagging(**args).get("TagSet", [])
        return {"Tagging": urlencode({t["Key"]: t["Value"] for t in tags})} if tags else {}

    def _sha256(self, key: str, version: str | None) -> str:
        digest = hashlib.sha256()
        body = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=version)["Body"]
        with body:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def _publish(self, detail_type: str, cp: Checkpoint | None, **extra: Any) -> None:
        detail = MigrationResult.model_validate(
            {
                **(cp.as_dict() if cp else {}),
                **{
                    k: v
                    for k, v in {
                        "organizationId": extra.get("org_id"),
                        "reason": extra.get("reason"),
                    }.items()
                    if v
                },
            }
        )
        self._publisher.publish(detail_type, detail)


# Object properties a rewrite must carry over, beside content type, metadata and tags.
_PRESERVED = (
    "StorageClass",
    "ContentEncoding",
    "ContentDisposition",
    "ContentLanguage",
    "CacheControl",
)


def _preserved(head: dict[str, Any]) -> dict[str, Any]:
    return {name: head[name] for name in _PRESERVED if head.get(name)}


class _Hashing:
    """A sink that hashes what passes through it."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return int(self._sink.write(data) or len(data))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def _parse_request(raw: dict[str, Any]) -> MigrationRequest:
    try:
        return MigrationRequest.model_validate(raw)
    except ValidationError as err:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()
        )
        raise MigrationRefused(f"invalid migration request: {fields}"[:500]) from None


def _is_throttle(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    return code in {
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "RequestLimitExceeded",
        "InternalError",
        "ServiceUnavailable",
        "KMSInternalException",
    }


def _error_text(error: dict[str, Any]) -> str:
    import json

    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
        cause = parsed.get("errorMessage", cause)
    except (ValueError, TypeError, AttributeError):
        pass
    return f"{error.get('Error', 'Error')}: {cause}"[:500]
