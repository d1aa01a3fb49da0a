"""Control-plane events from SQS: parse once, dispatch by detail-type, report failures per message.

A message that can never succeed (not JSON, unknown type, invalid fields, oversize) raises
:class:`InvalidEvent`: Powertools' batch processor reports it as failed, SQS redrives it to the
DLQ after ``maxReceiveCount`` receives, and the rest of the batch is processed. The reason is
logged (never the body) and, on the first receive, published as an ``event-rejected`` event.
"""

import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ValidationError

from orgkms.audit import record_quietly
from orgkms.aws import Platform
from orgkms.bus import PublishError, ResultPublisher
from orgkms.checkpoint import MigrationRefused
from orgkms.customer_keys import ByokRejected, CustomerKeyService
from orgkms.errors import ErasureRefused, InvalidEvent, OrgErased, OrgKmsError, OrgNotFound
from orgkms.keys import OrgKeyService
from orgkms.models import (
    CONTROL_PLANE_EVENTS,
    CONTROL_PLANE_SOURCE,
    MAX_DETAIL_BYTES,
    ROTATION_SCANNER_SOURCE,
    ByokRequested,
    ByokResult,
    EventRejected,
    KeyCompromised,
    MigrationRequest,
    MigrationResult,
    OrgCreated,
    OrgErasureRequest,
    OrgErasureResult,
    OrgKeyReady,
    RotateDue,
)
from orgkms.observability import SERVICE, metrics
from orgkms.rotation import RotationService

logger = Logger(service=SERVICE, child=True)

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32


def parse_control_plane_message(body: str) -> tuple[str, BaseModel]:
    """Return (detail-type, validated detail) of an SQS body carrying an EventBridge event."""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise InvalidEvent(f"message body exceeds {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidEvent("message body is not JSON") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise InvalidEvent(f"message body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        event = parse(event=data, model=EventBridgeModel)
    except (ValidationError, ValueError, TypeError) as err:
        raise InvalidEvent(f"not an EventBridge event ({_summary(err)})") from None
    scanner = event.source == ROTATION_SCANNER_SOURCE and event.detail_type == "rotate-due"
    if event.source != CONTROL_PLANE_SOURCE and not scanner:
        raise InvalidEvent(f"source must be {CONTROL_PLANE_SOURCE!r}")
    model = CONTROL_PLANE_EVENTS.get(event.detail_type)
    if model is None:
        raise InvalidEvent(f"unknown detail-type {event.detail_type[:64]!r}")
    if len(json.dumps(event.detail)) > MAX_DETAIL_BYTES:
        raise InvalidEvent(f"{event.detail_type} detail exceeds {MAX_DETAIL_BYTES} bytes")
    try:
        return event.detail_type, model.model_validate(event.detail)
    except ValidationError as err:
        raise InvalidEvent(f"invalid {event.detail_type} detail: {_summary(err)}") from None


class ControlPlaneConsumer:
    """Handles one SQS record of a control-plane queue."""

    def __init__(
        self,
        keys: OrgKeyService,
        publisher: ResultPublisher,
        idempotency: tuple[DynamoDBPersistenceLayer, IdempotencyConfig] | None = None,
        start_migration: Callable[[MigrationRequest], str] | None = None,
        customer_keys: CustomerKeyService | None = None,
        rotation: RotationService | None = None,
        erasure: Any = None,
    ) -> None:
        self._keys = keys
        self._publisher = publisher
        self._customer_keys = customer_keys
        self._rotation = rotation
        self.idempotency_config = idempotency[1] if idempotency else None
        provision: Callable[..., dict[str, Any]] = self._provision
        if idempotency:
            provision = idempotent_function(
                data_keyword_argument="request",
                persistence_store=idempotency[0],
                config=idempotency[1],
            )(provision)
        self._provision_once = provision
        self._start_migration = start_migration
        self._erasure = erasure

    @classmethod
    def from_platform(cls, platform: Platform) -> "ControlPlaneConsumer":
        settings = platform.settings
        keys = key_service(platform)
        idempotency = None
        if settings.idempotency_table:
            idempotency = (
                DynamoDBPersistenceLayer(
                    table_name=settings.idempotency_table, boto3_session=platform.session
                ),
                IdempotencyConfig(
                    event_key_jmespath="organizationId",
                    payload_validation_jmespath="[keyMode, region, ownerPrincipalArn]",
                    raise_on_no_idempotency_key=True,
                    expires_after_seconds=3600,
                ),
            )
        publisher = ResultPublisher(platform.client("events"), settings.event_bus_name)
        start = platform.start_migration if settings.migration_state_machine_arn else None
        from orgkms.erasure import ErasureService

        return cls(
            keys,
            publisher,
            idempotency,
            start,
            customer_key_service(platform, publisher, start),
            RotationService(
                platform.registry,
                lambda region: platform.client("kms", region),
                start,
                platform_account=platform.account[0],
                audit=platform.audit,
            ),
            ErasureService.from_platform(platform),
        )

    def handle_record(self, record: SQSRecord) -> None:
        logger.remove_keys(["org_id", "detail_type"])  # nothing carries over between records
        try:
            detail_type, detail = parse_control_plane_message(record.body)
        except InvalidEvent as err:
            self._reject(record, str(err))
            raise
        logger.append_keys(detail_type=detail_type)
        try:
            if isinstance(detail, OrgCreated):
                self._org_created(detail)
            elif isinstance(detail, MigrationRequest):
                self._migration_requested(detail)
            elif isinstance(detail, ByokRequested):
                self._byok_requested(detail)
            elif isinstance(detail, RotateDue):
                self._rotate_due(detail, _sent_at(record.body))
            elif isinstance(detail, KeyCompromised):
                self._key_compromised(detail, _sent_at(record.body))
            elif isinstance(detail, OrgErasureRequest):
                self._erasure_requested(detail)
        except Exception as err:
            # Retried by SQS, then dead-lettered: say why each time, whatever failed (an AWS
            # error or timeout that no step translated, an idempotency record in progress).
            reason = str(err) if isinstance(err, OrgKmsError) else f"{type(err).__name__}: {err}"
            logger.error(
                "control-plane event failed; it will be retried",
                extra={"reason": reason[:500], "message_id": record.message_id},
            )
            raise

    def _org_created(self, detail: OrgCreated) -> None:
        logger.append_keys(org_id=detail.organization_id)
        try:
            # Checked before the idempotency record, which would answer with the key it made.
            before = self._keys.refuse_if_erased(detail.organization_id)
            ready = self._provision_once(request=detail.model_dump(by_alias=True))
        except OrgErased as err:
            # Refused for good: answered on the bus once, and the message is done.
            logger.warning("org-created refused", extra={"reason": str(err)})
            self._publisher.publish(
                "event-rejected",
                EventRejected(
                    reason=str(err),
                    messageId="",
                    detailType="org-created",
                    organizationId=detail.organization_id,
                ),
            )
            return
        if self._rotation is not None and (before is None or not before.next_rotation_at):
            # Provisioning leaves the rotation fields alone, so the record read before it says
            # whether the org is scheduled yet.
            self._rotation.schedule(detail.organization_id, detail.rotation_period_days)
        self._publisher.publish("org-key-ready", OrgKeyReady.model_validate(ready))
        metrics.add_metric(name="OrgKeyReady", unit=MetricUnit.Count, value=1)

    def _byok_requested(self, detail: ByokRequested) -> None:
        logger.append_keys(org_id=detail.organization_id)
        if self._customer_keys is None:
            raise InvalidEvent("this deployment does not accept customer keys")
        try:
            execution = self._customer_keys.request(detail.organization_id, detail.key_arn)
        except ByokRejected:
            metrics.add_metric(name="ByokRejected", unit=MetricUnit.Count, value=1)
            return  # answered with byok-rejected; the organization stays on its key
        except OrgNotFound as err:
            self._publisher.publish(
                "byok-rejected",
                ByokResult(
                    organizationId=detail.organization_id,
                    reason=str(err),
                    fix="send org-created first",
                ),
            )
            return
        logger.info("BYOK re-key started", extra={"execution": execution})

    def _rotate_due(self, detail: RotateDue, sent_at: float = 0.0) -> None:
        logger.append_keys(org_id=detail.organization_id)
        if self._rotation is None:
            raise InvalidEvent("this deployment does not rotate keys")
        result = self._rotation.rotate(
            detail.organization_id,
            on_demand=detail.on_demand,
            rekey=detail.rekey,
            scheduled=detail.scheduled,
            requested_at=sent_at,
        )
        if result is not None:
            self._publisher.publish("key-rotated", result)
            metrics.add_metric(name="KeyRotations", unit=MetricUnit.Count, value=1)

    def _key_compromised(self, detail: KeyCompromised, sent_at: float = 0.0) -> None:
        """New org key, re-key onto it, then retire the old key (disabled at once).

        A report sent before the last compromise response started is that response's duplicate
        (or older news): the key it names is already being replaced, so nothing more is done.
        """
        logger.append_keys(org_id=detail.organization_id)
        record = self._keys.registry.get(detail.organization_id)
        if record is not None and sent_at and sent_at <= record.compromise_started_at:
            logger.info("key compromise already being answered; duplicate report ignored")
            return
        logger.warning("key compromise reported", extra={"reason": detail.reason or ""})
        record_quietly(
            self._keys.audit,
            detail.organization_id,
            "key-compromise-reported",
            reason=detail.reason or "",
        )
        metrics.add_metric(name="KeyCompromises", unit=MetricUnit.Count, value=1)
        request = MigrationRequest(
            organizationId=detail.organization_id,
            purpose="compromise",
            reason=detail.reason or "key compromised",
            deletionWindowDays=detail.deletion_window_days,
            noncurrentVersions=detail.noncurrent_versions,
        )
        if record is not None and record.key_mode == "customer":
            self._refuse_migration(
                request,
                "the organization uses its customer's key: the customer disables or replaces it "
                "in its account and sends byok-requested with the new key",
            )
            return
        execution = self._migrate(request)
        if execution:
            self._keys.registry.set_attributes(
                detail.organization_id, {"compromiseStartedAt": int(time.time())}
            )
            self._publisher.publish(
                "key-compromise-started",
                MigrationResult(
                    organizationId=detail.organization_id,
                    status="STARTED",
                    execution=execution,
                    reason=request.reason or "",
                ),
            )

    def _migration_requested(self, detail: MigrationRequest) -> None:
        logger.append_keys(org_id=detail.organization_id)
        self._migrate(detail)

    def _migrate(self, request: MigrationRequest) -> str:
        """Start the re-key workflow; "" if refused (answered on the bus, message done)."""
        if self._start_migration is None:
            raise InvalidEvent("this deployment has no re-key workflow")
        try:
            execution = self._start_migration(request)
        except (MigrationRefused, OrgNotFound) as err:
            self._refuse_migration(request, str(err))
            return ""
        logger.info("migration started", extra={"execution": execution})
        metrics.add_metric(name="MigrationsStarted", unit=MetricUnit.Count, value=1)
        return execution

    def _refuse_migration(self, request: MigrationRequest, reason: str) -> None:
        # Refused before any data is touched: a reason on the bus, and the message is done.
        self._publisher.publish(
            "migration-failed",
            MigrationResult(
                organizationId=request.organization_id, status="REFUSED", reason=reason
            ),
        )
        logger.warning("migration refused", extra={"reason": reason})

    def _erasure_requested(self, detail: OrgErasureRequest) -> None:
        logger.append_keys(org_id=detail.organization_id)
        if self._erasure is None:
            raise InvalidEvent("this deployment does not erase organizations")
        org_id = detail.organization_id
        try:
            receipt = self._erasure.erase(
                org_id, detail.deletion_window_days, detail.force, detail.reason or ""
            )
        except ErasureRefused as err:
            # Refused before anything changed: a reason on the bus, and the message is done.
            self._publisher.publish(
                "org-erasure-failed",
                OrgErasureResult(organizationId=org_id, status="REFUSED", reason=str(err)),
            )
            logger.warning("erasure refused", extra={"reason": str(err)})
            return
        self._publisher.publish(
            "org-erased",
            OrgErasureResult(
                organizationId=org_id,
                status="ERASED",
                keys=receipt["keys"],
                objects=receipt["objects"],
                bytes=receipt["bytes"],
                versions=receipt["versions"],
                residueVersions=len(receipt["residue"]),
                auditEntryHash=receipt["auditEntry"]["hash"],
            ),
        )
        metrics.add_metric(name="OrgsErased", unit=MetricUnit.Count, value=1)

    def _provision(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._keys.ensure_org_key(OrgCreated.model_validate(request))
        return OrgKeyReady(
            organizationId=record.org_id,
            keyArn=record.encrypt_key_arn,
            aliasName=record.alias_name or None,
            keyMode=record.key_mode,
            region=record.region,
        ).model_dump(by_alias=True, exclude_none=True)

    def _reject(self, record: SQSRecord, reason: str) -> None:
        logger.error(
            "control-plane event rejected",
            extra={"reason": reason, "message_id": record.message_id},
        )
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
        if record.attributes.approximate_receive_count not in (None, "1"):
            return
        try:
            self._publisher.publish(
                "event-rejected", EventRejected(reason=reason, messageId=record.message_id)
            )
        except PublishError as err:
            logger.warning("rejection event not published", extra={"error": str(err)})


def _sent_at(body: str) -> float:
    """When the control plane sent the event (its EventBridge ``time``), as epoch seconds."""
    from datetime import datetime

    try:
        sent = json.loads(body).get("time", "")
        return datetime.fromisoformat(str(sent).replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError, AttributeError):
        return 0.0


def customer_key_service(
    platform: Platform,
    publisher: ResultPublisher | None = None,
    start: Callable[[MigrationRequest], str] | None = None,
) -> CustomerKeyService:
    """The BYOK service wired to this platform (the CLI passes no start: it checks only)."""
    from orgkms.key_health import KeyHealthReporter

    settings = platform.settings
    account_id, partition = platform.account
    return CustomerKeyService(
        registry=platform.registry,
        kms_for_region=lambda region: platform.client("kms", region),
        partition=partition,
        account_id=account_id,
        data_access_role_arn=settings.data_access_role_arn,
        key_admin_role_arn=settings.key_admin_role_arn,
        migration_role_arn=settings.migration_role_arn,
        data_bucket=settings.data_bucket,
        bucket_region=platform.region,
        start_migration=start,
        publisher=publisher,
        health=KeyHealthReporter(platform.registry, publisher, platform.audit),
        audit=platform.audit,
    )


def queue_due_rotations(platform: Platform, queue_url: str) -> int:
    """The daily scanner: one rotate-due message per due organization; returns how many."""
    import uuid

    rotation = RotationService(platform.registry, lambda region: platform.client("kms", region))
    sqs = platform.client("sqs")
    batch: list[dict[str, str]] = []
    queued = 0

    def send() -> None:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        if response.get("Failed"):
            raise OrgKmsError(f"{len(response['Failed'])} rotate-due message(s) not queued")

    for org_id in rotation.due():
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "rotate-due",
            "source": ROTATION_SCANNER_SOURCE,
            "account": platform.account[0],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": platform.region,
            "resources": [],
            "detail": {"organizationId": org_id, "scheduled": True},
        }
        batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(event)})
        if len(batch) == 10:
            send()
            queued, batch = queued + len(batch), []
    if batch:
        send()
        queued += len(batch)
    logger.info("rotations queued", extra={"count": queued})
    metrics.add_metric(name="RotationsQueued", unit=MetricUnit.Count, value=queued)
    return queued


def key_service(platform: Platform) -> OrgKeyService:
    """The org key service wired to this platform's clients and settings."""
    settings = platform.settings
    account_id, partition = platform.account
    return OrgKeyService(
        registry=platform.registry,
        kms_for_region=lambda region: platform.client("kms", region),
        default_region=platform.region,
        partition=partition,
        account_id=account_id,
        data_access_role_arn=settings.data_access_role_arn,
        key_admin_role_arn=settings.key_admin_role_arn,
        shared_key_arn=settings.shared_key_arn,
        stack_name=settings.stack_name,
        migration_role_arn=settings.migration_role_arn,
        data_bucket=settings.data_bucket,
        audit=platform.audit,
    )


def _summary(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in err.errors()
        )[:500]
    return type(err).__name__


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level
