"""The demo's key-control scenes: a customer brings its key, revokes and restores it; an org key
is reported compromised and replaced; rotation is confirmed and reported."""

import io
import json
import time
from typing import Any

from orgkms.errors import KeyUnavailable
from orgkms.local.stack import CUSTOMER_ACCOUNT_ID
from orgkms.models import control_plane_entry

CUSTOMER_ROOT = {
    "Sid": "CustomerAccountRoot",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT_ID}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def customer_brings_its_key(stack: Any, platform: Any, results: str, org: str) -> str:
    """BYOK refused twice with the reason and the fix, then accepted and the data moved."""
    from orgkms.demo import _short as short
    from orgkms.demo import say
    from orgkms.lifecycle import customer_key_service

    say(f"\n   BYOK: {org}'s security team creates a key in its own account {CUSTOMER_ACCOUNT_ID}")
    customer = stack.customer_kms()
    key = customer.create_key(
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [CUSTOMER_ROOT]}),
        Description=f"{org}'s own key",
    )["KeyMetadata"]["Arn"]
    for attempt in (f"alias/{org}-key", key):
        say(f"   -> byok-requested keyArn={short(attempt)}")
        _send(stack, "byok-requested", {"organizationId": org, "keyArn": attempt})
        for event in stack.results(results):
            if event["detail-type"] == "byok-rejected":
                say(f"   <- byok-rejected: {event['reason']}\n      fix: {event['fix']}")

    statements = customer_key_service(platform).policy_statements(org)
    say(
        f"   The customer adds the {len(statements)} statements of `orgkms byok policy {org}` "
        "(bound to its OrganizationId) to the key policy and asks again"
    )
    policy = {"Version": "2012-10-17", "Statement": [CUSTOMER_ROOT, *statements]}
    customer.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    before = stack.executions()
    _send(stack, "byok-requested", {"organizationId": org, "keyArn": key})
    status = stack.wait_for_execution(before)["status"]
    for event in stack.results(results):
        if event["detail-type"].startswith("byok"):
            say(f"   <- {event['detail-type']} {short(event['keyArn'])}")
    record = platform.lookup(org)
    say(
        f"   re-key workflow {status}: {org} is now {record.key_mode}-managed on "
        f"{short(record.encrypt_key_arn)}; {_read_first(platform, org)}"
    )
    return str(key)


def customer_revokes_and_restores(
    stack: Any, platform: Any, results: str, org: str, key: str
) -> None:
    from orgkms.demo import say

    say(f"\n   Revocation: {org}'s customer disables its key")
    stack.customer_kms().disable_key(KeyId=key)
    max_age = platform.settings.cache.max_age_seconds
    time.sleep(max_age)  # the bound: warm data keys live at most the cache's max age
    try:
        platform.store.put(org, "doc", "after-revocation.txt", io.BytesIO(b"new data"), 8)
        say("   !! a write succeeded under a revoked key")
    except KeyUnavailable as refused:
        say(f"   put refused after at most {max_age:g} s (the cache's max age): {refused}")
    say(f"   objects written meanwhile: {_names(platform, org).count('after-revocation.txt')}")
    for event in stack.results(results):
        say(f"   <- {event['detail-type']}: {event.get('reason')}")
    say(f"   orgkms status {org}: key {platform.lookup(org).key_health}")

    stack.customer_kms().enable_key(KeyId=key)
    from orgkms.lifecycle import customer_key_service

    _, message = customer_key_service(platform, platform.publisher).check(org)
    say(f"   The customer re-enables it; orgkms byok check {org}: {message}")
    for event in stack.results(results):
        say(f"   <- {event['detail-type']}")
    say(f"   {_read_first(platform, org)}")


def org_key_compromised(stack: Any, platform: Any, results: str, org: str) -> None:
    from orgkms.demo import _short as short
    from orgkms.demo import say

    old = platform.lookup(org).encrypt_key_arn
    say(f"\n   Key compromise: {org}'s key {short(old)} is reported leaked (key-compromised)")
    before = stack.executions()
    _send(stack, "key-compromised", {"organizationId": org, "reason": "demo: key leaked"})
    status = stack.wait_for_execution(before)["status"]
    stack.results(results)
    record = platform.lookup(org)
    state = platform.client("kms", record.region).describe_key(KeyId=old)["KeyMetadata"]
    checkpoint = platform.checkpoints.get(org)
    say(
        f"   re-key workflow {status}: {checkpoint.done} object(s) re-encrypted onto the new key "
        f"{short(record.encrypt_key_arn)} in {record.region}"
    )
    say(
        f"   old key: {state['KeyState']}, deletion {str(state.get('DeletionDate', ''))[:10]}; "
        f"{_read_first(platform, org)}"
    )


def rotation_reported(stack: Any, platform: Any, results: str, orgs: list[str]) -> None:
    from orgkms.demo import say

    say("\n   Rotation: rotate-due for each (the daily scanner sends these when they fall due)")
    for org in orgs:
        _send(stack, "rotate-due", {"organizationId": org, "onDemand": True})
    for event in stack.results(results):
        if event["detail-type"] == "key-rotated":
            say(f"   <- key-rotated {event['organizationId']:8} {event['action']}")
    say("      (rotation re-encrypts nothing: old data stays under earlier key material)")


# ------------------------------------------------------------------ plumbing


def _send(stack: Any, detail_type: str, detail: dict[str, Any]) -> None:
    import contextlib

    stack.put_events([control_plane_entry(detail_type, detail)])
    with contextlib.redirect_stdout(io.StringIO()):
        stack.deliver()


def _names(platform: Any, org: str) -> list[str]:
    return [o.name for o in platform.store.list(org)]


def _read_first(platform: Any, org: str) -> str:
    platform.envelope.flush(org)
    name = _names(platform, org)[0]
    out = io.BytesIO()
    platform.store.get(org, name, out)
    return f"{org} reads {name}: {len(out.getvalue())} bytes"
