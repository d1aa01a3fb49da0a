"""Wiring: AWS clients, stack outputs and the services built on them.

Clients are built once per process and passed to services, which never create their own.
"""

import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orgkms.config import DEFAULT_STACK_NAME, Settings
from orgkms.errors import ConfigurationError, OrgNotFound
from orgkms.registry import OrgRecord, OrgRegistry

CLIENT_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5)


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """The Outputs of ``stack_name`` as a dict; a clear error if there is no such stack."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as err:
        raise ConfigurationError(
            f"stack {stack_name!r} not found: deploy it (sam deploy) or start "
            "'orgkms local serve' and pass --endpoint-url"
        ) from err
    except BotoCoreError as err:
        raise ConfigurationError(f"cannot reach CloudFormation: {err}") from err
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


@dataclass
class Platform:
    """Everything orgkms needs in one process, built lazily from one boto3 session."""

    settings: Settings
    session: boto3.session.Session

    @classmethod
    def from_stack(
        cls, stack_name: str = DEFAULT_STACK_NAME, session: boto3.session.Session | None = None
    ) -> "Platform":
        session = session or boto3.session.Session()
        cfn = session.client("cloudformation", config=CLIENT_CONFIG)
        return cls(Settings.from_outputs(stack_name, stack_outputs(cfn, stack_name)), session)

    @classmethod
    def from_env(cls) -> "Platform":
        return cls(Settings.from_env(), boto3.session.Session())

    @cached_property
    def account(self) -> tuple[str, str]:
        """(account id, partition) of this platform: from the function's environment, else
        from STS once per process."""
        account_id = os.environ.get("ORGKMS_ACCOUNT_ID")
        if account_id:
            return account_id, os.environ.get("ORGKMS_PARTITION", "aws")
        parts = self.client("sts").get_caller_identity()["Arn"].split(":")
        return parts[4], parts[1]

    @property
    def region(self) -> str:
        return self.session.region_name or os.environ.get("AWS_REGION", "us-east-1")

    def client(self, service: str, region: str | None = None) -> Any:
        return _client(self.session, service, region or self.region)

    @cached_property
    def registry(self) -> OrgRegistry:
        return OrgRegistry(self.settings.registry_table, self.client("dynamodb"))

    def lookup(self, org_id: str) -> OrgRecord:
        record = self.registry.get(org_id)
        if record is None:
            raise OrgNotFound(f"organization {org_id!r} is not registered")
        return record

    @cached_property
    def checkpoints(self) -> Any:
        from orgkms.checkpoint import CheckpointStore

        if not self.settings.migration_table:
            raise ConfigurationError("this stack has no migration table")
        return CheckpointStore(self.settings.migration_table, self.client("dynamodb"))

    def start_migration(self, request: Any) -> str:
        """Start the re-key workflow for ``request.organization_id``; returns the execution ARN.

        A second start while the org's migration is active is refused here (and, for two starts
        racing, by the workflow's lock).
        """
        import json
        import uuid

        from orgkms.checkpoint import ACTIVE, MigrationRefused

        org_id = request.organization_id
        self.lookup(org_id)
        current = self.checkpoints.get(org_id)
        sfn = self.client("stepfunctions")
        if (
            current is not None
            and current.status in ACTIVE
            and execution_running(sfn, current.execution)
        ):
            raise MigrationRefused(
                f"organization {org_id!r} is already being migrated by {current.execution}"
            )
        response = sfn.start_execution(
            stateMachineArn=self.settings.migration_state_machine_arn,
            name=f"{org_id}-{uuid.uuid4().hex[:12]}",
            input=json.dumps(request.model_dump(by_alias=True, exclude_none=True)),
        )
        return str(response["executionArn"])

    @cached_property
    def publisher(self) -> Any:
        from orgkms.bus import ResultPublisher

        return ResultPublisher(self.client("events"), self.settings.event_bus_name)

    @cached_property
    def envelope(self) -> Any:
        from orgkms.envelope import OrgEnvelope
        from orgkms.key_health import KeyHealthReporter

        health = KeyHealthReporter(self.registry, self.publisher, self.audit)
        return OrgEnvelope(self.lookup, self.settings.cache, health=health)

    @cached_property
    def store(self) -> Any:
        from orgkms.store import OrgStore

        return OrgStore(
            self.envelope, self.client("s3"), self.settings.data_bucket, audit=self.audit
        )

    @cached_property
    def audit(self) -> Any:
        """The organizations' audit trail (None on a stack without an audit table)."""
        from orgkms.audit import AuditTrail

        if not self.settings.audit_table:
            return None
        return AuditTrail(self.settings.audit_table, self.client("dynamodb"))


def execution_running(sfn: Any, execution: str) -> bool:
    """Is the execution holding an org's migration lock still running? (Stopped, timed-out and
    history-limited executions never reach the workflow's fail step, so their lock is stale.)"""
    if not execution:
        return False
    try:
        return bool(sfn.describe_execution(executionArn=execution)["status"] == "RUNNING")
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise


@lru_cache(maxsize=64)
def _client(session: boto3.session.Session, service: str, region: str) -> Any:
    return session.client(service, region_name=region, config=CLIENT_CONFIG)  # type: ignore[call-overload]
