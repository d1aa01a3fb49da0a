"""Control-plane events from SQS: parse once, dispatch by detail-type, report failures per message.

A message that can never succeed (not JSON, unknown type, invalid fields, oversize) raises
:class:`InvalidEvent`: Powertools' batch processor reports it as failed, SQS redrives it to the
DLQ after ``maxReceiveCount`` receives, and the rest of the batch is processed. The reason is
logged (never the body) and, on the first receive, published as an ``event-rejected`` event.
"""

import json
import os
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

from orgkms.aws import Platform
from orgkms.bus import PublishError, ResultPublisher
from orgkms.checkpoint import MigrationRefused
from orgkms.errors import InvalidEvent, OrgKmsError, OrgNotFound
from orgkms.keys import OrgKeyService
from orgkms.models import (
    CONTROL_PLANE_EVENTS,
    CONTROL_PLANE_SOURCE,
    MAX_DETAIL_BYTES,
    EventRejected,
    MigrationRequest,
    MigrationResult,
    OrgCreated,
    OrgKeyReady,
)
from orgkms.observability import SERVICE, metrics

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
    if event.source != CONTROL_PLANE_SOURCE:
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
    ) -> None:
        self._keys = keys
        self._publisher = publisher
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
        return cls(keys, publisher, idempotency, start)

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
        ready = self._provision_once(request=detail.model_dump(by_alias=True))
        self._publisher.publish("org-key-ready", OrgKeyReady.model_validate(ready))
        metrics.add_metric(name="OrgKeyReady", unit=MetricUnit.Count, value=1)

    def _migration_requested(self, detail: MigrationRequest) -> None:
        logger.append_keys(org_id=detail.organization_id)
        if self._start_migration is None:
            raise InvalidEvent("this deployment has no re-key workflow")
        try:
            execution = self._start_migration(detail)
        except (MigrationRefused, OrgNotFound) as err:
            # Refused before any data is touched: a reason on the bus, and the message is done.
            self._publisher.publish(
                "migration-failed",
                MigrationResult(
                    organizationId=detail.organization_id, status="REFUSED", reason=str(err)
                ),
            )
            logger.warning("migration refused", extra={"reason": str(err)})
            return
        logger.info("migration started", extra={"execution": execution})
        metrics.add_metric(name="MigrationsStarted", unit=MetricUnit.Count, value=1)

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


def key_service(platform: Platform) -> OrgKeyService:
    """The org key service wired to this platform's clients and settings."""
    settings = platform.settings
    account_id, partition = _caller_account(platform)
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
    )


def _caller_account(platform: Platform) -> tuple[str, str]:
    account_id = os.environ.get("ORGKMS_ACCOUNT_ID")
    if account_id:
        return account_id, os.environ.get("ORGKMS_PARTITION", "aws")
    arn = platform.client("sts").get_caller_identity()["Arn"]
    parts = arn.split(":")
    return parts[4], parts[1]


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
