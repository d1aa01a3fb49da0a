"""Residency: an organization's key lives in its home region, and its data is sealed there."""

from typing import Any

import boto3


def test_an_org_key_is_created_and_used_in_its_home_region(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(region="eu-west-1")
    record = platform.lookup(org)

    assert record.region == "eu-west-1"
    assert record.encrypt_key_arn.split(":")[3] == "eu-west-1"
    eu = boto3.client("kms", region_name="eu-west-1")
    assert eu.describe_key(KeyId=record.encrypt_key_arn)["KeyMetadata"]["Enabled"]
    us_keys = {k["KeyArn"] for k in stack.client("kms").list_keys()["Keys"]}
    assert record.encrypt_key_arn not in us_keys
    message = platform.envelope.encrypt(org, "doc", b"stays in the EU")
    assert platform.envelope.decrypt(org, message, "doc") == b"stays in the EU"
