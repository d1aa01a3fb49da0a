"""Found in review: which key an organization ends up with after a failed or retried creation."""

import json
from typing import Any

import pytest
from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend

from orgkms.keys import ORG_TAG, STACK_TAG
from orgkms.models import OrgCreated
from tests.functional.test_org_created import org_keys
from tests.functional.test_provisioning import fail_once, service


def test_a_retry_never_adopts_a_key_this_stack_did_not_create(stack: Any, new_org: Any) -> None:
    """Fixed (medium): recovery adopts any enabled key tagged with the org id, whatever its policy.

    After any handled failure before the key was recorded (CreateKey throttled, a transient
    error, a Lambda timeout), the next delivery calls _scan_for_tagged_key, which adopts the
    oldest *enabled key in the region tagged ``orgkms:organization-id = <org>``. It checks
    neither the ``orgkms:stack`` tag nor the key policy nor who created it. A key made by
    another orgkms stack in the same account (staging vs prod: same alias and tag names), or
    planted by any principal allowed kms:CreateKey + tagging, becomes the org's key, and its
    policy can grant the planter kms:Decrypt on everything the org then encrypts. (In AWS a key
    of another stack then fails EnableKeyRotation on the stack-tag condition: the org is stuck
    until the DLQ instead.)

    Fix: tag each key with the claim token (written to the registry before CreateKey) and adopt
    only a key carrying this stack's tag and the recorded token; never adopt by org tag alone.
    """
    org = new_org()
    kms = stack.client("kms")
    planted = kms.create_key(
        Description="not made by orgkms",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AnyoneAnything",
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ],
            }
        ),
        Tags=[
            {"TagKey": ORG_TAG, "TagValue": org},
            {"TagKey": STACK_TAG, "TagValue": "some-other-stack"},
        ],
    )["KeyMetadata"]["Arn"]
    fail_once(kms, "CreateKey", RuntimeError("ThrottlingException"))
    svc = service(stack, kms=kms)

    with pytest.raises(RuntimeError):
        svc.ensure_org_key(OrgCreated(organizationId=org))
    record = svc.ensure_org_key(OrgCreated(organizationId=org))

    assert record.encrypt_key_arn != planted


class _InternalFailure(JsonRESTError):
    code = 500

    def __init__(self) -> None:
        super().__init__("KMSInternalException", "the key was created; the answer was lost")


def test_a_lost_create_key_response_does_not_make_a_second_key(
    stack: Any, platform: Any, new_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixed (low/medium): CreateKey is retried by botocore, so one org can get two keys.

    aws.CLIENT_CONFIG gives every client (the function's KMS client included) adaptive retries
    with 8 attempts. CreateKey is not idempotent: when KMS creates the key but the answer is
    lost (a 5xx, a read timeout, a reset connection), botocore sends CreateKey again and a
    second key tagged for the org is created; the first stays enabled, unaliased, with the
    org's policy, and is adopted or warned about only on a later crash recovery. README:
    "exactly one key and one alias" under crashes.

    Fix: make CreateKey with retries disabled (a client with max_attempts=1) and let the SQS
    redelivery + tagged-key recovery handle the failure; or pass a client token via the tag.
    """
    org = new_org()
    original = KmsBackend.create_key
    state = {"lost": False}

    def create_then_lose_answer(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        key = original(self, *args, **kwargs)
        if not state["lost"]:
            state["lost"] = True
            raise _InternalFailure()
        return key

    monkeypatch.setattr(KmsBackend, "create_key", create_then_lose_answer)
    svc = service(stack, kms=platform.client("kms"))

    try:
        svc.ensure_org_key(OrgCreated(organizationId=org))
    except Exception:  # a failed attempt is fine: the retry must adopt its key
        svc.ensure_org_key(OrgCreated(organizationId=org))

    assert len(org_keys(stack, org)) == 1
