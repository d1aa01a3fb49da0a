"""BYOK: which customer keys orgkms accepts, and that a refusal changes nothing.

Cross-account access is emulated by the fidelity layer (rule 12: a customer's key policy decides);
key states moto does not have (PendingImport, asymmetric specs of some kinds) come from stubbed
DescribeKey answers shaped as AWS documents them.
"""

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from orgkms.customer_keys import ByokRejected, CustomerKeyService, parse_key_reference
from orgkms.lifecycle import customer_key_service
from orgkms.local.stack import CUSTOMER_ACCOUNT_ID
from orgkms.models import control_plane_entry

PLATFORM_ACCOUNT = "123456789012"


def customer_key(stack: Any, org_id: str, *, grant: bool = True, **create: Any) -> str:
    """A key in the customer's account whose policy adds orgkms's statements for ``org_id``."""
    statements = [
        {
            "Sid": "CustomerRoot",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT_ID}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if grant:
        statements += customer_key_service(stack.platform()).policy_statements(org_id)
    kms = stack.customer_kms(region=create.pop("region", "us-east-1"))
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return str(kms.create_key(Policy=policy, **create)["KeyMetadata"]["Arn"])


def put_on_customer_key(platform: Any, org_id: str, key: str) -> str:
    """Check ``key`` as BYOK does and make it the org's only key, without the re-key workflow
    (that move is the workflow tier's test): the org is then customer-managed."""
    accepted = customer_key_service(platform).accept_key(platform.lookup(org_id), key)
    platform.registry.set_keys(org_id, accepted, [accepted], key_mode="customer")
    platform.envelope.flush(org_id)
    return accepted


@pytest.fixture
def results(stack: Any, new_org: Any) -> Any:
    return stack.listen(new_org("byok-results"), ["byok-accepted", "byok-rejected"])


def request_byok(stack: Any, org_id: str, key: str) -> None:
    stack.put_events(
        [control_plane_entry("byok-requested", {"organizationId": org_id, "keyArn": key})]
    )
    stack.deliver()


# ------------------------------------------------------------------ references (no AWS at all)


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("1234abcd-12ab-34cd-56ef-1234567890ab", "bare key id or alias name"),
        ("alias/customer-key", "bare key id or alias name"),
        ("arn:aws:kms:us-east-1:210987654321:key", "not a KMS key ARN"),
        ("arn:aws:kms:us-east-1:21098765432:key/abc", "not a KMS key ARN"),
        ("arn:aws:s3:::bucket/key", "not a KMS key ARN"),
        ("arn:aws-cn:kms:cn-north-1:210987654321:key/abc", "partition 'aws-cn'"),
        (f"arn:aws:kms:us-east-1:{PLATFORM_ACCOUNT}:key/abc", "platform's own account"),
        ("arn:aws:kms:us-east-1:210987654321:alias/aws/s3", "AWS managed key"),
        ("", "empty"),
    ],
)
def test_key_references_are_refused_before_any_aws_call(reference: str, says: str) -> None:
    with pytest.raises(ByokRejected) as refused:
        parse_key_reference(reference, "aws", PLATFORM_ACCOUNT)
    assert says in refused.value.reason
    assert refused.value.fix


def test_a_bare_alias_name_reaches_no_kms_client(platform: Any, create_org: Any) -> None:
    """A look-alike alias in the platform's account must never be resolved: no call at all."""
    import boto3

    kms = boto3.client("kms", region_name="us-east-1")
    service = _service_with(platform, kms)
    org_id = create_org()
    record = platform.lookup(org_id)
    # No responses queued: any call fails the test.
    with Stubber(kms), pytest.raises(ByokRejected, match="bare key id or alias name"):
        service.accept_key(record, "alias/org-acme-encryption")


def test_full_key_and_alias_arns_are_accepted() -> None:
    key = parse_key_reference("arn:aws:kms:eu-west-1:210987654321:key/abc-1", "aws", "1" * 12)
    alias = parse_key_reference("arn:aws:kms:eu-west-1:210987654321:alias/mine", "aws", "1" * 12)
    assert (key.region, key.account, key.is_alias) == ("eu-west-1", "210987654321", False)
    assert alias.is_alias


# ------------------------------------------------------------------ key checks (stubbed states)

_KEY = f"arn:aws:kms:us-east-1:{CUSTOMER_ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"KeyState": "PendingImport", "Origin": "EXTERNAL"}, "not been imported"),
        ({"KeyState": "PendingDeletion"}, "scheduled for deletion"),
        ({"KeyState": "Disabled"}, "disabled"),
        ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "RSA_2048"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "HMAC_256"),
        ({"KeyUsage": "SIGN_VERIFY", "KeySpec": "SYMMETRIC_DEFAULT"}, "SIGN_VERIFY"),
    ],
)
def test_unusable_key_states_and_specs_are_rejected(
    platform: Any, create_org: Any, metadata: dict[str, str], says: str
) -> None:
    import boto3

    org_id = create_org()
    kms = boto3.client("kms", region_name="us-east-1")
    service = _service_with(platform, kms)
    described = {
        "KeyId": _KEY.rsplit("/", 1)[1],
        "Arn": _KEY,
        "KeyState": "Enabled",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "Origin": "AWS_KMS",
        **metadata,
    }
    with Stubber(kms) as stub:
        stub.add_response("describe_key", {"KeyMetadata": described}, {"KeyId": _KEY})
        with pytest.raises(ByokRejected, match=says):
            service.accept_key(platform.lookup(org_id), _KEY)
    assert platform.lookup(org_id).encrypt_key_arn != _KEY


# ------------------------------------------------------------------ through the control plane


def test_a_key_whose_policy_lacks_our_statements_is_rejected_with_the_fix(
    stack: Any, platform: Any, create_org: Any, results: Any
) -> None:
    org_id = create_org()
    before = platform.lookup(org_id)
    key = customer_key(stack, org_id, grant=False)

    request_byok(stack, org_id, key)

    (answer,) = results()
    assert answer["detail-type"] == "byok-rejected"
    assert "does not let the platform" in answer["reason"]
    assert f"orgkms byok policy {org_id}" in answer["fix"]
    after = platform.lookup(org_id)
    assert (after.encrypt_key_arn, after.decrypt_key_arns) == (
        before.encrypt_key_arn,
        before.decrypt_key_arns,
    )
    assert (after.byok_status, after.key_mode) == ("REJECTED", "dedicated")


def test_a_policy_for_another_org_does_not_open_the_key(
    stack: Any, create_org: Any, results: Any
) -> None:
    """The statements bind the key to one org's context: granted for A, useless for B."""
    org_a, org_b = create_org(), create_org()
    key = customer_key(stack, org_a)

    request_byok(stack, org_b, key)

    (answer,) = results()
    assert answer["detail-type"] == "byok-rejected"
    assert "encryption context" in answer["reason"]


def test_a_key_outside_the_orgs_home_region_is_rejected(
    stack: Any, create_org: Any, results: Any
) -> None:
    org_id = create_org(region="eu-west-1")
    key = customer_key(stack, org_id, region="us-east-1")

    request_byok(stack, org_id, key)

    (answer,) = results()
    assert "keeps its data in eu-west-1" in answer["reason"]


def test_an_asymmetric_customer_key_is_rejected(stack: Any, create_org: Any, results: Any) -> None:
    org_id = create_org()
    key = customer_key(stack, org_id, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")

    request_byok(stack, org_id, key)

    (answer,) = results()
    assert "RSA_2048" in answer["reason"]


def test_a_disabled_customer_key_is_rejected(stack: Any, create_org: Any, results: Any) -> None:
    org_id = create_org()
    key = customer_key(stack, org_id)
    stack.customer_kms().disable_key(KeyId=key)

    request_byok(stack, org_id, key)

    (answer,) = results()
    assert "disabled" in answer["reason"]


def test_another_orgs_key_in_our_account_is_rejected(
    stack: Any, platform: Any, create_org: Any, results: Any
) -> None:
    victim, attacker = create_org(), create_org()

    request_byok(stack, attacker, platform.lookup(victim).encrypt_key_arn)

    (answer,) = results()
    assert "platform's own account" in answer["reason"]
    assert platform.lookup(attacker).encrypt_key_arn != platform.lookup(victim).encrypt_key_arn


def test_a_key_serving_one_org_is_refused_for_another(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org_a, org_b = create_org(), create_org()
    key = customer_key(stack, org_a)
    key_policy = json.loads(
        stack.customer_kms().get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    )
    key_policy["Statement"] += customer_key_service(platform).policy_statements(org_b)
    stack.customer_kms().put_key_policy(
        KeyId=key, PolicyName="default", Policy=json.dumps(key_policy)
    )
    service = customer_key_service(platform)

    assert service.accept_key(platform.lookup(org_a), key) == key
    with pytest.raises(ByokRejected, match="already serves another organization"):
        service.accept_key(platform.lookup(org_b), key)


def test_an_alias_arn_is_stored_as_the_key_arn(stack: Any, platform: Any, create_org: Any) -> None:
    org_id = create_org()
    key = customer_key(stack, org_id)
    alias = f"alias/{org_id}-data"
    stack.customer_kms().create_alias(AliasName=alias, TargetKeyId=key)
    alias_arn = f"arn:aws:kms:us-east-1:{CUSTOMER_ACCOUNT_ID}:{alias}"

    accepted = customer_key_service(platform).accept_key(platform.lookup(org_id), alias_arn)

    assert accepted == key


def test_malformed_byok_events_are_answered_not_lost(
    stack: Any, platform: Any, create_org: Any, results: Any
) -> None:
    org_id = create_org()
    for bad in ("not-an-arn", "arn:aws:kms:us-east-1:210987654321:key/", "alias/x"):
        request_byok(stack, org_id, bad)
    answers = results()
    assert [a["detail-type"] for a in answers] == ["byok-rejected"] * 3
    assert not stack.dead_letters("KeyEventsDLQUrl")


def _service_with(platform: Any, kms: Any) -> CustomerKeyService:
    settings = platform.settings
    return CustomerKeyService(
        registry=platform.registry,
        kms_for_region=lambda _region: kms,
        partition="aws",
        account_id=PLATFORM_ACCOUNT,
        data_access_role_arn=settings.data_access_role_arn,
        key_admin_role_arn=settings.key_admin_role_arn,
        migration_role_arn=settings.migration_role_arn,
        data_bucket=settings.data_bucket,
        bucket_region="us-east-1",
    )
