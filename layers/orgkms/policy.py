"""Key policies of organization keys.

moto does not evaluate key policies, so the statements built here are checked in unit tests
against each call orgkms makes in AWS (see tests/unit/test_policy.py).
"""

from typing import Any

ORG_CONTEXT_KEY = "OrganizationId"
DATA_TYPE_CONTEXT_KEY = "DataType"

# What the data path (the platform's services, through the orgkms library) may do with an org key.
DATA_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]

# What orgkms's key administration role does to an org key over its life.
ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:DescribeKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:RotateKeyOnDemand",
]

# What the customer's owner principal may do: inspect the key, read its own data without us
# (portability), and switch the key off or on again (revocation stays in the customer's hands).
OWNER_INSPECT_ACTIONS = [
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
]
OWNER_CONTROL_ACTIONS = ["kms:DisableKey", "kms:EnableKey"]


def org_context_condition(org_id: str) -> dict[str, Any]:
    """The condition that binds a data-key operation to one organization's context."""
    return {
        "StringEquals": {f"kms:EncryptionContext:{ORG_CONTEXT_KEY}": org_id},
        "ForAllValues:StringEquals": {
            "kms:EncryptionContextKeys": [ORG_CONTEXT_KEY, DATA_TYPE_CONTEXT_KEY]
        },
    }


def build_org_key_policy(
    *,
    partition: str,
    account_id: str,
    org_id: str,
    data_access_role_arn: str,
    key_admin_role_arn: str,
    owner_principal_arn: str | None = None,
    migration_role_arn: str | None = None,
    data_bucket: str | None = None,
    bucket_region: str | None = None,
) -> dict[str, Any]:
    """The key policy of ``org_id``'s key.

    The account-root statement keeps the key manageable through IAM so it can never be locked
    out; no service role gets ``kms:*``; every data operation needs the organization's context.
    The data roles (the platform's, and the re-key workflow's) get their KMS access here only,
    never from their IAM policies, which would apply to every org's key alike.
    """
    data_principals = [data_access_role_arn, *([migration_role_arn] if migration_role_arn else [])]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableAccountRootAccess",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AllowKeyAdministrationByOrgKms",
            "Effect": "Allow",
            "Principal": {"AWS": key_admin_role_arn},
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "AllowDataAccessForThisOrganizationOnly",
            "Effect": "Allow",
            "Principal": {"AWS": data_principals},
            "Action": DATA_ACTIONS,
            "Resource": "*",
            "Condition": org_context_condition(org_id),
        },
    ]
    if data_bucket and bucket_region:
        statements.append(
            _s3_prefix_statement(partition, org_id, data_principals, data_bucket, bucket_region)
        )
    if owner_principal_arn:
        statements += [
            {
                "Sid": "AllowOrganizationOwnerToInspectKey",
                "Effect": "Allow",
                "Principal": {"AWS": owner_principal_arn},
                "Action": OWNER_INSPECT_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "AllowOrganizationOwnerToDecryptOwnData",
                "Effect": "Allow",
                "Principal": {"AWS": owner_principal_arn},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": org_context_condition(org_id),
            },
            {
                "Sid": "AllowOrganizationOwnerToRevokeAndRestore",
                "Effect": "Allow",
                "Principal": {"AWS": owner_principal_arn},
                "Action": OWNER_CONTROL_ACTIONS,
                "Resource": "*",
            },
        ]
    return {"Version": "2012-10-17", "Id": f"orgkms-{org_id}", "Statement": statements}


def _s3_prefix_statement(
    partition: str, org_id: str, principals: list[str], data_bucket: str, bucket_region: str
) -> dict[str, Any]:
    # Plain objects under SSE-KMS: S3 calls KMS with the object ARN as context, not ours.
    return {
        "Sid": "AllowS3ObjectEncryptionForThisOrganizationsPrefixOnly",
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:ViaService": f"s3.{bucket_region}.amazonaws.com"},
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": (
                    f"arn:{partition}:s3:::{data_bucket}/orgs/{org_id}/*"
                )
            },
        },
    }


def build_customer_key_statements(
    *,
    partition: str,
    org_id: str,
    data_access_role_arn: str,
    key_admin_role_arn: str,
    migration_role_arn: str,
    data_bucket: str,
    bucket_region: str,
) -> list[dict[str, Any]]:
    """The statements a customer adds to its own key's policy so orgkms can use it (BYOK).

    Every data operation is bound to the customer's organization context, so the platform can
    use the key for that organization's data only. Nothing lets orgkms manage, rotate, disable
    or delete the key: those stay with the customer.
    """
    users = [data_access_role_arn, migration_role_arn, key_admin_role_arn]
    return [
        {
            "Sid": f"AllowOrgKmsToInspect{_sid(org_id)}",
            "Effect": "Allow",
            "Principal": {"AWS": [key_admin_role_arn, migration_role_arn]},
            "Action": ["kms:DescribeKey", "kms:GetKeyRotationStatus"],
            "Resource": "*",
        },
        {
            "Sid": f"AllowOrgKmsDataKeysFor{_sid(org_id)}",
            "Effect": "Allow",
            "Principal": {"AWS": users},
            "Action": DATA_ACTIONS,
            "Resource": "*",
            "Condition": org_context_condition(org_id),
        },
        {
            **_s3_prefix_statement(
                partition,
                org_id,
                [data_access_role_arn, migration_role_arn],
                data_bucket,
                bucket_region,
            ),
            "Sid": f"AllowOrgKmsS3ObjectsOf{_sid(org_id)}",
        },
    ]


def _sid(org_id: str) -> str:
    # Sids allow letters and digits only.
    return "".join(ch for ch in org_id.title() if ch.isalnum())
