"""Revocation of a customer's key: fail closed at once where seen, everywhere within the cache
bound, announce it once, and come back when the customer restores access.

Key states are enforced by the fidelity layer (rules 1 and 12): moto alone would keep encrypting.
"""

import io
import json
from typing import Any

import pytest

from orgkms.config import CachePolicy
from orgkms.envelope import OrgEnvelope
from orgkms.errors import KeyUnavailable
from orgkms.lifecycle import customer_key_service
from orgkms.models import control_plane_entry
from tests.functional.test_customer_keys import customer_key, put_on_customer_key


@pytest.fixture
def customer_org(stack: Any, platform: Any, create_org: Any) -> tuple[str, str]:
    """An org on its customer's key (set directly: the move itself is the workflow's test)."""
    org_id = create_org()
    key = customer_key(stack, org_id)
    put_on_customer_key(platform, org_id, key)
    return org_id, key


@pytest.fixture
def health_events(stack: Any, new_org: Any) -> Any:
    return stack.listen(new_org("health"), ["key-unavailable", "key-restored"])


def fresh_envelope(platform: Any, **policy: Any) -> OrgEnvelope:
    """Another warm process: its own caches, the same registry and bus."""
    from orgkms.key_health import KeyHealthReporter

    return OrgEnvelope(
        platform.lookup,
        CachePolicy(**policy) if policy else None,
        health=KeyHealthReporter(platform.registry, platform.publisher),
    )


def test_a_disabled_customer_key_fails_closed_and_is_announced_once(
    stack: Any, platform: Any, customer_org: tuple[str, str], health_events: Any
) -> None:
    org_id, key = customer_org
    stored = platform.envelope.encrypt(org_id, "doc", b"before revocation")
    stack.customer_kms().disable_key(KeyId=key)
    first, second = fresh_envelope(platform), fresh_envelope(platform)

    for envelope in (first, second):
        with pytest.raises(KeyUnavailable, match="key unavailable") as refused:
            envelope.encrypt(org_id, "doc", b"secret after revocation")
        assert "secret" not in str(refused.value)
        with pytest.raises(KeyUnavailable):
            envelope.decrypt(org_id, stored, "doc")

    record = platform.lookup(org_id)
    assert record.key_health == "UNAVAILABLE"
    assert "DisabledException" in record.key_health_reason
    assert [e["detail-type"] for e in health_events()] == ["key-unavailable"]


def test_nothing_is_stored_while_the_key_is_revoked(
    stack: Any, platform: Any, customer_org: tuple[str, str]
) -> None:
    """No fallback to the shared key, no plaintext object: the put fails and writes nothing."""
    org_id, key = customer_org
    stack.customer_kms().disable_key(KeyId=key)
    store = platform.store

    with pytest.raises(KeyUnavailable):
        store.put(org_id, "doc", "report.txt", io.BytesIO(b"x" * 100), 100)

    assert store.list(org_id) == []


def test_a_warm_cache_bites_within_its_max_age_and_no_later(
    stack: Any, platform: Any, customer_org: tuple[str, str]
) -> None:
    """The stated bound: a process that cached a data key may use it until the cache's max age;
    after that it asks KMS and is refused."""
    import time

    org_id, key = customer_org
    envelope = OrgEnvelope(platform.lookup, CachePolicy(max_age_seconds=3))
    envelope.encrypt(org_id, "doc", b"warms the cache")
    stack.customer_kms().disable_key(KeyId=key)
    calls = envelope.kms_calls

    envelope.encrypt(org_id, "doc", b"within the bound: the cached data key, no KMS call")
    assert envelope.kms_calls == calls
    time.sleep(3.1)
    with pytest.raises(KeyUnavailable):
        envelope.encrypt(org_id, "doc", b"after the bound")


def test_scheduled_deletion_revokes_and_cancelling_restores(
    stack: Any, platform: Any, customer_org: tuple[str, str], health_events: Any
) -> None:
    org_id, key = customer_org
    customer = stack.customer_kms()
    customer.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)

    with pytest.raises(KeyUnavailable, match="KMSInvalidStateException"):
        fresh_envelope(platform).encrypt(org_id, "doc", b"x")
    customer.cancel_key_deletion(KeyId=key)
    customer.enable_key(KeyId=key)
    healthy, message = customer_key_service(platform, platform.publisher).check(org_id)

    assert healthy, message
    assert platform.lookup(org_id).key_health == "AVAILABLE"
    assert [e["detail-type"] for e in health_events()] == ["key-unavailable", "key-restored"]


def test_removing_our_statements_from_the_key_policy_revokes(
    stack: Any, platform: Any, customer_org: tuple[str, str]
) -> None:
    org_id, key = customer_org
    customer = stack.customer_kms()
    policy = json.loads(customer.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if not s["Sid"].startswith("AllowOrgKms")]
    customer.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))

    with pytest.raises(KeyUnavailable, match="AccessDeniedException"):
        fresh_envelope(platform).encrypt(org_id, "doc", b"x")
    healthy, message = customer_key_service(platform).check(org_id)
    assert not healthy
    assert "orgkms byok policy" in message


def test_the_next_successful_call_restores_the_org(
    stack: Any, platform: Any, customer_org: tuple[str, str], health_events: Any
) -> None:
    org_id, key = customer_org
    stack.customer_kms().disable_key(KeyId=key)
    with pytest.raises(KeyUnavailable):
        fresh_envelope(platform).encrypt(org_id, "doc", b"x")
    stack.customer_kms().enable_key(KeyId=key)

    ciphertext = fresh_envelope(platform).encrypt(org_id, "doc", b"back again")

    assert platform.envelope.decrypt(org_id, ciphertext, "doc") == b"back again"
    assert platform.lookup(org_id).key_health == "AVAILABLE"
    assert [e["detail-type"] for e in health_events()] == ["key-unavailable", "key-restored"]


def test_throttling_is_not_revocation(
    platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transient KMS error fails the call but leaves the org's state and cache alone."""
    from botocore.awsrequest import AWSResponse

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    org_id = create_org()
    seen: list[tuple[str, bool]] = []
    envelope = OrgEnvelope(platform.lookup, health=lambda org, _a, ok, _w: seen.append((org, ok)))

    def throttled(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        return AWSResponse("https://kms", 400, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    envelope._session.register("before-call.kms.GenerateDataKey", throttled)
    with pytest.raises(KeyUnavailable, match=r"ThrottlingException.*retry"):
        envelope.encrypt(org_id, "doc", b"x")
    assert seen == []
    assert platform.lookup(org_id).key_health == "AVAILABLE"


def test_messages_for_a_revoked_org_are_retried_then_dead_lettered(
    stack: Any, platform: Any, create_org: Any
) -> None:
    """A rotate-due for an org whose key is disabled fails each time and ends in the DLQ with
    its reason; it is never dropped."""
    org_id = create_org()
    stack.client("kms").disable_key(KeyId=platform.lookup(org_id).encrypt_key_arn)
    detail = {"organizationId": org_id, "onDemand": True}

    stack.put_events([control_plane_entry("rotate-due", detail)])
    stack.deliver()

    dead = [json.loads(m["Body"]) for m in stack.dead_letters("RotationDLQUrl")]
    assert [d["detail"]["organizationId"] for d in dead].count(org_id) == 1


def test_revoking_the_grant_a_customer_gave_locks_the_platform_out(
    stack: Any, platform: Any, create_org: Any
) -> None:
    """A customer may let the platform in with a grant instead of policy statements."""
    org_id = create_org()
    key = customer_key(stack, org_id, grant=False)
    customer = stack.customer_kms()
    grant = customer.create_grant(
        KeyId=key,
        GranteePrincipal=platform.settings.data_access_role_arn,
        Operations=["DescribeKey", "GenerateDataKey", "Decrypt", "Encrypt"],
    )["GrantId"]
    put_on_customer_key(platform, org_id, key)
    assert fresh_envelope(platform).encrypt(org_id, "doc", b"with the grant")

    customer.revoke_grant(KeyId=key, GrantId=grant)

    with pytest.raises(KeyUnavailable, match="AccessDeniedException"):
        fresh_envelope(platform).encrypt(org_id, "doc", b"after the grant is gone")
    assert platform.lookup(org_id).key_health == "UNAVAILABLE"
