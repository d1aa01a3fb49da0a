"""Settings: from a Lambda's environment, or from a deployed stack's Outputs (the CLI)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from orgkms.errors import ConfigurationError

DEFAULT_STACK_NAME = "orgkms"


@dataclass(frozen=True)
class CachePolicy:
    """Bounds of the data-key cache of one organization.

    ``max_age_seconds`` is also how long a revoked or erased organization's cached data keys may
    still be used by a warm process, and how long a registry change takes to reach it.
    """

    max_age_seconds: float = 60.0
    max_messages: int = 100_000
    max_bytes: int = 1 << 30
    capacity: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.max_age_seconds <= 3600:
            raise ConfigurationError("cache max age must be between 0 and 3600 seconds")
        if not 0 < self.max_messages <= 1 << 32:
            raise ConfigurationError("cache max messages must be between 1 and 2^32")
        if self.max_bytes <= 0 or self.capacity <= 0:
            raise ConfigurationError("cache max bytes and capacity must be positive")


@dataclass(frozen=True)
class Settings:
    """Names of the deployed resources orgkms uses, and tunables."""

    registry_table: str
    data_bucket: str
    event_bus_name: str
    shared_key_arn: str
    data_access_role_arn: str
    key_admin_role_arn: str
    idempotency_table: str = ""
    migration_table: str = ""
    migration_role_arn: str = ""
    migration_state_machine_arn: str = ""
    audit_table: str = ""
    stack_name: str = DEFAULT_STACK_NAME
    cache: CachePolicy = field(default_factory=CachePolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read the variables template.yaml gives every function."""
        env = os.environ if env is None else env
        try:
            return cls(
                registry_table=env["ORGKMS_REGISTRY_TABLE"],
                data_bucket=env["ORGKMS_DATA_BUCKET"],
                event_bus_name=env["ORGKMS_EVENT_BUS"],
                shared_key_arn=env["ORGKMS_SHARED_KEY_ARN"],
                data_access_role_arn=env["ORGKMS_DATA_ACCESS_ROLE_ARN"],
                key_admin_role_arn=env["ORGKMS_KEY_ADMIN_ROLE_ARN"],
                idempotency_table=env.get("ORGKMS_IDEMPOTENCY_TABLE", ""),
                migration_table=env.get("ORGKMS_MIGRATION_TABLE", ""),
                migration_role_arn=env.get("ORGKMS_MIGRATION_ROLE_ARN", ""),
                migration_state_machine_arn=env.get("ORGKMS_MIGRATION_STATE_MACHINE_ARN", ""),
                audit_table=env.get("ORGKMS_AUDIT_TABLE", ""),
                stack_name=env.get("ORGKMS_STACK_NAME", DEFAULT_STACK_NAME),
                cache=_cache_policy(env),
            )
        except KeyError as err:
            raise ConfigurationError(f"environment variable {err.args[0]} is not set") from err

    @classmethod
    def from_outputs(cls, stack_name: str, outputs: Mapping[str, str]) -> "Settings":
        """Read a stack's Outputs, as the CLI does."""
        try:
            return cls(
                registry_table=outputs["OrgRegistryTableName"],
                data_bucket=outputs["OrgDataBucketName"],
                event_bus_name=outputs["ControlPlaneBusName"],
                shared_key_arn=outputs["SharedPlatformKeyArn"],
                data_access_role_arn=outputs["OrgDataAccessRoleArn"],
                key_admin_role_arn=outputs["KeyAdminRoleArn"],
                idempotency_table=outputs.get("IdempotencyTableName", ""),
                migration_table=outputs.get("MigrationTableName", ""),
                migration_role_arn=outputs.get("MigrationRoleArn", ""),
                migration_state_machine_arn=outputs.get("MigrationStateMachineArn", ""),
                audit_table=outputs.get("AuditTableName", ""),
                stack_name=stack_name,
                cache=_cache_policy(os.environ),
            )
        except KeyError as err:
            raise ConfigurationError(
                f"stack {stack_name!r} has no output {err.args[0]}: is it an orgkms stack?"
            ) from err


def _cache_policy(env: Mapping[str, str]) -> CachePolicy:
    try:
        return CachePolicy(
            max_age_seconds=float(env.get("ORGKMS_CACHE_MAX_AGE_SECONDS", 60)),
            max_messages=int(env.get("ORGKMS_CACHE_MAX_MESSAGES", 100_000)),
            max_bytes=int(env.get("ORGKMS_CACHE_MAX_BYTES", 1 << 30)),
            capacity=int(env.get("ORGKMS_CACHE_CAPACITY", 100)),
        )
    except ValueError as err:
        raise ConfigurationError(f"invalid cache setting: {err}") from err
