"""template.yaml: the properties reviewers check by hand, checked on every run."""

from pathlib import Path
from typing import Any

import pytest

from orgkms.config import Settings
from orgkms.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_consumed_queue_has_a_dlq_and_every_dlq_is_a_queue(template: dict[str, Any]) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    consumed = {name for name, q in queues.items() if name not in dlqs}
    assert consumed, "no queues found"
    for name in consumed:
        redrive = queues[name]["Properties"].get("RedrivePolicy")
        assert redrive, f"{name} has no dead-letter queue"
        assert redrive["maxReceiveCount"]
    assert dlqs <= set(queues)


def test_every_sqs_event_source_reports_batch_item_failures(template: dict[str, Any]) -> None:
    found = 0
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                found += 1
                assert event["Properties"].get("FunctionResponseTypes") == [
                    "ReportBatchItemFailures"
                ], name
    assert found


def test_every_iam_statement_has_a_sid_and_a_resource(template: dict[str, Any]) -> None:
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                assert st.get("Sid"), f"{name}: statement without Sid"
                assert st.get("Resource"), f"{name}/{st['Sid']}: statement without Resource"


def test_no_service_role_is_granted_a_wildcard_action(template: dict[str, Any]) -> None:
    for role in resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert not any("*" in action for action in actions), st["Sid"]


def test_log_groups_have_retention_and_functions_log_to_them(template: dict[str, Any]) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    assert groups and all("RetentionInDays" in g["Properties"] for g in groups.values())
    for fn in resources(template, "AWS::Serverless::Function").values():
        assert fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups


def test_data_bucket_is_versioned_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["OrgDataBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = template["Resources"]["OrgDataBucketPolicy"]["Properties"]["PolicyDocument"]
    deny = [st for st in policy["Statement"] if st["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_outputs_name_everything_the_cli_reads(template: dict[str, Any]) -> None:
    outputs = {name: "x" for name in template["Outputs"]}
    settings = Settings.from_outputs("orgkms", outputs)  # raises if one is missing
    assert settings.registry_table == "x"


def test_runtime_is_python_312_on_arm64(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.12"
    assert function_globals["Architectures"] == ["arm64"]


def test_no_role_gets_kms_data_access_to_own_account_keys_from_iam(
    template: dict[str, Any],
) -> None:
    """With the account-root statement in every key policy, an IAM grant of kms:Decrypt would
    reach every org's key alike; data access to the account's keys must come from each key's
    own policy. The one exception is customers' keys (BYOK) in other accounts, which AWS only
    lets a role use when its IAM policy allows it too: such grants must exclude this account."""
    data_actions = {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"}
    foreign_only = {"aws:ResourceAccount": {"Ref": "AWS::AccountId"}}
    granted = 0
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if data_actions & set(actions):
                    granted += 1
                    condition = st.get("Condition", {})
                    assert condition.get("StringNotEquals") == foreign_only, f"{name}/{st['Sid']}"
                    # ...and bound to an organization: ours, or S3's object context under orgs/.
                    assert "kms:EncryptionContext:OrganizationId" in condition.get(
                        "Null", {}
                    ) or "kms:EncryptionContext:aws:s3:arn" in condition.get("StringLike", {}), (
                        f"{name}/{st['Sid']}"
                    )
    assert granted, "no role may use customers' keys: BYOK would fail in AWS"
