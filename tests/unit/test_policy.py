"""Org key policies. moto does not evaluate key policies, so this tier does: every call orgkms
makes in AWS is checked against the statements the product generates."""

import fnmatch
from typing import Any

import pytest

from orgkms.policy import build_org_key_policy

ACCOUNT = "111122223333"
DATA_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orgkms-OrgDataAccessRole-X"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orgkms-KeyAdminRole-Y"
OWNER = f"arn:aws:iam::{ACCOUNT}:role/acme-security"
OTHER = f"arn:aws:iam::{ACCOUNT}:role/someone-else"


MIGRATION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orgkms-MigrationRole-Z"


def policy(owner: str | None = OWNER) -> dict[str, Any]:
    return build_org_key_policy(
        partition="aws",
        account_id=ACCOUNT,
        org_id="acme",
        data_access_role_arn=DATA_ROLE,
        key_admin_role_arn=ADMIN_ROLE,
        owner_principal_arn=owner,
        migration_role_arn=MIGRATION_ROLE,
        data_bucket="orgkms-data",
        bucket_region="us-east-1",
    )


def allowed(doc: dict[str, Any], principal: str, action: str, context: dict[str, str]) -> bool:
    """Is ``action`` by ``principal`` allowed by a statement that names the principal itself?

    A small evaluator for the condition operators these policies use; the account-root statement
    is excluded on purpose (it delegates to IAM and is checked separately).
    """
    for st in doc["Statement"]:
        named = st["Principal"]["AWS"]
        named = named if isinstance(named, list) else [named]
        if st["Sid"] == "EnableAccountRootAccess" or principal not in named:
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if _conditions_hold(st.get("Condition", {}), context):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in conditions.items():
        for key, expected in pairs.items():
            ctx_key = key.removeprefix("kms:EncryptionContext:")
            if operator == "StringEquals":
                if context.get(ctx_key) != expected:
                    return False
            elif operator == "StringLike":
                if not fnmatch.fnmatchcase(context.get(ctx_key, ""), expected):
                    return False
            elif operator == "ForAllValues:StringEquals" and key == "kms:EncryptionContextKeys":
                if not set(context) <= set(expected):
                    return False
            else:
                raise AssertionError(f"evaluator does not know {operator} {key}")
    return True


ORG_CONTEXT = {"OrganizationId": "acme", "DataType": "invoice"}


@pytest.mark.parametrize("action", ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"])
def test_data_roles_may_use_the_key_with_its_orgs_context(action: str) -> None:
    assert allowed(policy(), DATA_ROLE, action, ORG_CONTEXT)
    assert allowed(policy(), MIGRATION_ROLE, action, ORG_CONTEXT)


@pytest.mark.parametrize(
    "context",
    [
        {"OrganizationId": "globex", "DataType": "invoice"},
        {"OrganizationId": "Acme", "DataType": "invoice"},
        {"DataType": "invoice"},
        {},
        {"OrganizationId": "acme", "DataType": "invoice", "aws-crypto-public-key": "x"},
    ],
)
def test_data_role_is_refused_any_other_context(context: dict[str, str]) -> None:
    for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"):
        assert not allowed(policy(), DATA_ROLE, action, context)
        assert not allowed(policy(), MIGRATION_ROLE, action, context)


@pytest.mark.parametrize(
    "action",
    [
        "kms:CreateAlias",
        "kms:DescribeKey",
        "kms:EnableKeyRotation",
        "kms:ListResourceTags",
    ],
)
def test_key_admin_role_can_do_each_call_orgkms_makes_while_provisioning(action: str) -> None:
    assert allowed(policy(), ADMIN_ROLE, action, {})


@pytest.mark.parametrize("action", ["kms:Decrypt", "kms:Encrypt", "kms:ScheduleKeyDeletion"])
def test_key_admin_role_cannot_read_data_or_destroy_the_key(action: str) -> None:
    assert not allowed(policy(), ADMIN_ROLE, action, ORG_CONTEXT)


def test_owner_can_inspect_revoke_and_read_its_own_data_only() -> None:
    doc = policy()
    for action in ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:DisableKey", "kms:EnableKey"):
        assert allowed(doc, OWNER, action, {})
    assert allowed(doc, OWNER, "kms:Decrypt", ORG_CONTEXT)
    assert not allowed(doc, OWNER, "kms:Decrypt", {"OrganizationId": "globex", "DataType": "x"})
    assert not allowed(doc, OWNER, "kms:ScheduleKeyDeletion", {})
    assert not allowed(doc, OWNER, "kms:PutKeyPolicy", {})


def test_without_an_owner_no_owner_statements_exist() -> None:
    sids = {st["Sid"] for st in policy(owner=None)["Statement"]}
    assert not any("Owner" in sid for sid in sids)
    assert not any(allowed(policy(owner=None), OWNER, a, ORG_CONTEXT) for a in ("kms:Decrypt",))


def test_someone_else_gets_nothing_from_the_key_policy_itself() -> None:
    for action in ("kms:Decrypt", "kms:DescribeKey", "kms:DisableKey"):
        assert not allowed(policy(), OTHER, action, ORG_CONTEXT)


def test_only_the_account_root_statement_grants_kms_star() -> None:
    doc = policy()
    star = [st for st in doc["Statement"] if "kms:*" in str(st["Action"])]
    assert [st["Sid"] for st in star] == ["EnableAccountRootAccess"]
    assert star[0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


def test_every_statement_has_a_unique_sid() -> None:
    sids = [st["Sid"] for st in policy()["Statement"]]
    assert len(sids) == len(set(sids)) and all(sids)


S3_CONTEXT = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}


def test_s3_may_use_the_key_for_the_orgs_own_prefix_only() -> None:
    own = {**S3_CONTEXT, "aws:s3:arn": "arn:aws:s3:::orgkms-data/orgs/acme/report.pdf"}
    other = {**S3_CONTEXT, "aws:s3:arn": "arn:aws:s3:::orgkms-data/orgs/globex/report.pdf"}
    direct = {"aws:s3:arn": "arn:aws:s3:::orgkms-data/orgs/acme/report.pdf"}
    for principal in (DATA_ROLE, MIGRATION_ROLE):
        assert allowed(policy(), principal, "kms:GenerateDataKey", own)
        assert allowed(policy(), principal, "kms:Decrypt", own)
        assert not allowed(policy(), principal, "kms:Decrypt", other)
        assert not allowed(policy(), principal, "kms:Decrypt", direct)
