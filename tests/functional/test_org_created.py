"""org-created through the whole stack: bus -> rule -> queue -> Lambda -> one key per org."""

import json
from typing import Any

from tests.conftest import org_created

OWNER = "arn:aws:iam::123456789012:role/acme-security-admin"


def org_keys(stack: Any, org_id: str, region: str = "us-east-1") -> list[str]:
    """Every KMS key in the region tagged for this organization."""
    kms = stack.session().client("kms", region_name=region)
    found = []
    for key in kms.list_keys()["Keys"]:
        tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
        if {"TagKey": "orgkms:organization-id", "TagValue": org_id} in tags:
            found.append(key["KeyArn"])
    return found


def org_aliases(stack: Any, org_id: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    kms = stack.session().client("kms", region_name=region)
    return [
        a
        for a in kms.list_aliases()["Aliases"]
        if a["AliasName"] == f"alias/org-{org_id}-encryption"
    ]


def test_org_created_gives_the_org_one_rotating_key_with_alias_and_registry_arn(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(ownerPrincipalArn=OWNER)

    record = platform.registry.get(org)
    assert record.ready and record.key_mode == "dedicated"
    assert record.encrypt_key_arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert record.decrypt_key_arns == (record.encrypt_key_arn,)
    assert org_keys(stack, org) == [record.encrypt_key_arn]
    [alias] = org_aliases(stack, org)
    assert record.encrypt_key_arn.endswith(alias["TargetKeyId"])
    kms = stack.client("kms")
    assert kms.get_key_rotation_status(KeyId=record.encrypt_key_arn)["KeyRotationEnabled"]
    metadata = kms.describe_key(KeyId=record.encrypt_key_arn)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")


def test_the_created_key_carries_the_generated_policy(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(ownerPrincipalArn=OWNER)
    arn = platform.registry.get(org).encrypt_key_arn

    policy = json.loads(
        stack.client("kms").get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    )

    data = next(
        s for s in policy["Statement"] if s["Sid"] == "AllowDataAccessForThisOrganizationOnly"
    )
    assert data["Principal"]["AWS"] == [
        stack.outputs["OrgDataAccessRoleArn"],
        stack.outputs["MigrationRoleArn"],
    ]
    assert data["Condition"]["StringEquals"] == {"kms:EncryptionContext:OrganizationId": org}
    assert any(s["Principal"]["AWS"] == OWNER for s in policy["Statement"])


def test_key_lives_in_the_orgs_home_region(stack: Any, platform: Any, create_org: Any) -> None:
    org = create_org(region="eu-west-1")

    record = platform.registry.get(org)
    assert record.region == "eu-west-1"
    assert record.encrypt_key_arn.startswith("arn:aws:kms:eu-west-1:")
    assert org_keys(stack, org, "eu-west-1") == [record.encrypt_key_arn]
    assert org_keys(stack, org, "us-east-1") == []


def test_shared_mode_registers_the_org_on_the_platform_shared_key(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(keyMode="shared")

    record = platform.registry.get(org)
    assert record.key_mode == "shared"
    assert record.encrypt_key_arn == stack.outputs["SharedPlatformKeyArn"]
    assert org_keys(stack, org) == [] and org_aliases(stack, org) == []


def test_the_same_event_delivered_three_times_makes_exactly_one_key(
    stack: Any, platform: Any, new_org: Any
) -> None:
    org = new_org()
    event = org_created({"organizationId": org})

    stack.put_events([event, event, event])
    stack.deliver()
    stack.put_events([event])
    stack.deliver()

    assert len(org_keys(stack, org)) == 1
    assert len(org_aliases(stack, org)) == 1
    assert platform.registry.get(org).encrypt_key_arn == org_keys(stack, org)[0]


def test_ids_differing_only_in_case_are_two_organizations(
    stack: Any, platform: Any, new_org: Any
) -> None:
    lower = new_org("case")
    upper = lower.upper()
    stack.put_events(
        [org_created({"organizationId": lower}), org_created({"organizationId": upper})]
    )
    stack.deliver()

    a, b = platform.registry.get(lower), platform.registry.get(upper)
    assert a.encrypt_key_arn != b.encrypt_key_arn
    assert org_keys(stack, lower) == [a.encrypt_key_arn]
    assert org_keys(stack, upper) == [b.encrypt_key_arn]
