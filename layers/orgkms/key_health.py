"""Key health: an organization whose key was revoked is marked, announced and counted once.

The envelope calls :class:`KeyHealthReporter` when KMS refuses an org key for good (disabled,
pending deletion, access removed) and when a call succeeds again for an org marked unavailable.
A conditional registry write decides which process reports a transition, so each revocation and
each restoration produces one ``key-unavailable`` / ``key-restored`` event however many warm
processes notice it.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from orgkms.audit import record_quietly
from orgkms.models import KeyHealthChanged
from orgkms.observability import SERVICE, metrics
from orgkms.registry import KeyHealth, OrgRegistry

logger = Logger(service=SERVICE, child=True)


class KeyHealthReporter:
    """Records key-health transitions in the registry and publishes them."""

    def __init__(
        self, registry: OrgRegistry, publisher: Any | None = None, audit: Any = None
    ) -> None:
        self._registry = registry
        self._publisher = publisher
        self._audit = audit

    def __call__(self, org_id: str, key_arn: str, available: bool, reason: str) -> bool:
        """Record one observation; True if it changed the organization's state."""
        health: KeyHealth = "AVAILABLE" if available else "UNAVAILABLE"
        if not self._registry.change_key_health(org_id, health, reason):
            return False
        detail_type = "key-restored" if available else "key-unavailable"
        log = logger.info if available else logger.warning
        log(detail_type, extra={"org_id": org_id, "key_arn": key_arn, "reason": reason})
        metrics.add_metric(
            name="KeyRestored" if available else "KeyUnavailable", unit=MetricUnit.Count, value=1
        )
        record_quietly(
            self._audit,
            org_id,
            "key-restored" if available else "key-revoked",
            keyArn=key_arn,
            reason=reason,
        )
        if self._publisher is not None:
            self._publisher.publish(
                detail_type,
                KeyHealthChanged(organizationId=org_id, keyArn=key_arn, reason=reason),
            )
        return True
