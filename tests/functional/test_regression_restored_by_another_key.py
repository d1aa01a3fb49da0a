"""A read under an older key announced a revoked key as restored.

What was wrong: after a revocation, the envelope reported ``key-restored`` on any successful
decrypt. An organization whose decrypt list holds an older key beside the revoked one (the dual
phase of a move onto a customer's key, or after such a move failed) read an old object under
the older key, and orgkms marked the revoked key AVAILABLE and published ``key-restored``; the
next write failed again and published a second ``key-unavailable``. The customer's key was
never restored.

Severity: medium (a false restoration on the bus and in the audit trail; the health record and
its one-event-per-transition promise no longer mean anything for such an org).

Fix: only an operation that proves the encrypt key works restores it: an encrypt, or a decrypt
for an organization whose only decrypt key is its encrypt key.
"""

from typing import Any

import pytest

from orgkms.errors import KeyUnavailable
from orgkms.lifecycle import customer_key_service
from tests.functional.test_customer_keys import customer_key
from tests.functional.test_revocation import fresh_envelope


def test_reading_under_an_older_key_does_not_restore_a_revoked_key(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org_id = create_org()
    old_key = platform.lookup(org_id).encrypt_key_arn
    written_before = platform.envelope.encrypt(org_id, "doc", b"under the platform's key")
    key = customer_key(stack, org_id)
    accepted = customer_key_service(platform).accept_key(platform.lookup(org_id), key)
    platform.registry.set_keys(org_id, accepted, [old_key, accepted])
    platform.envelope.flush(org_id)
    events = stack.listen(new_org("health"), ["key-unavailable", "key-restored"])
    stack.customer_kms().disable_key(KeyId=key)
    with pytest.raises(KeyUnavailable):
        fresh_envelope(platform).encrypt(org_id, "doc", b"refused")

    reader = fresh_envelope(platform)
    assert reader.decrypt(org_id, written_before, "doc") == b"under the platform's key"
    with pytest.raises(KeyUnavailable):
        reader.encrypt(org_id, "doc", b"still refused")

    assert platform.lookup(org_id).key_health == "UNAVAILABLE"
    assert [e["detail-type"] for e in events()] == ["key-unavailable"]
