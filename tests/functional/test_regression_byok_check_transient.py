"""``orgkms byok check`` during throttling or a KMS outage marked the org's key UNAVAILABLE.

What was wrong: :meth:`CustomerKeyService.check` recorded every failed check as a revocation,
including throttling, internal KMS errors and an unreachable endpoint, so a busy KMS published
``key-unavailable`` (and later ``key-restored``) for a key nobody had revoked. README promises
that throttling and internal errors are transient and change nothing.

Severity: medium (a false revocation alarm to the customer and the platform's on-call; the
audit trail records a revocation that never happened).

Fix: a check that failed for a transient reason is reported to the caller but not recorded.
"""

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from orgkms.customer_keys import CustomerKeyService
from orgkms.key_health import KeyHealthReporter


class _BusyKms:
    """Describes the key as usable, then fails the round trip the way a busy KMS does."""

    def __init__(self, key_arn: str, failure: Exception) -> None:
        self._key_arn = key_arn
        self._failure = failure

    def describe_key(self, KeyId: str) -> dict[str, Any]:
        return {
            "KeyMetadata": {
                "Arn": self._key_arn,
                "KeyState": "Enabled",
                "KeySpec": "SYMMETRIC_DEFAULT",
                "KeyUsage": "ENCRYPT_DECRYPT",
            }
        }

    def generate_data_key(self, **_: Any) -> dict[str, Any]:
        raise self._failure


def _service(platform: Any, kms: Any) -> CustomerKeyService:
    settings = platform.settings
    return CustomerKeyService(
        registry=platform.registry,
        kms_for_region=lambda _region: kms,
        partition="aws",
        account_id="123456789012",
        data_access_role_arn=settings.data_access_role_arn,
        key_admin_role_arn=settings.key_admin_role_arn,
        migration_role_arn=settings.migration_role_arn,
        data_bucket=settings.data_bucket,
        bucket_region=platform.region,
        health=KeyHealthReporter(platform.registry, platform.publisher),
    )


def test_a_throttled_or_unreachable_kms_does_not_mark_the_key_unavailable(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org_id = create_org()
    key_arn = platform.lookup(org_id).encrypt_key_arn
    events = stack.listen(new_org("health"), ["key-unavailable", "key-restored"])
    failures = [
        ClientError({"Error": {"Code": "ThrottlingException"}}, "GenerateDataKey"),
        ClientError({"Error": {"Code": "KMSInternalException"}}, "GenerateDataKey"),
        EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com"),
    ]

    for failure in failures:
        healthy, message = _service(platform, _BusyKms(key_arn, failure)).check(org_id)
        assert not healthy
        assert "retry" in message

    assert platform.lookup(org_id).key_health == "AVAILABLE"
    assert events() == []


def test_a_disabled_key_is_still_recorded(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org_id = create_org()
    key_arn = platform.lookup(org_id).encrypt_key_arn
    disabled = ClientError({"Error": {"Code": "DisabledException"}}, "GenerateDataKey")

    healthy, _ = _service(platform, _BusyKms(key_arn, disabled)).check(org_id)

    assert not healthy
    assert platform.lookup(org_id).key_health == "UNAVAILABLE"
