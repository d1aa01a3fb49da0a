"""Every move of existing data onto another key goes through the re-key workflow: BYOK onto a
customer's key (another emulated account), and the response to a compromised org key."""

import io
from typing import Any

from orgkms.models import control_plane_entry
from tests.functional.test_customer_keys import customer_key, put_on_customer_key
from tests.workflow.conftest import send_and_wait
from tests.workflow.test_migration import read_all, seed


def test_byok_moves_every_object_onto_the_customers_key(
    workflow: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org = create_org()
    data = seed(platform, workflow, org)
    old_key = platform.lookup(org).encrypt_key_arn
    key = customer_key(workflow, org)
    results = workflow.listen(new_org("byok"), ["byok-accepted", "byok-rejected"])

    execution = send_and_wait(workflow, "byok-requested", {"organizationId": org, "keyArn": key})

    assert execution["status"] == "SUCCEEDED", execution.get("result")
    record = platform.lookup(org)
    assert (record.key_mode, record.encrypt_key_arn, record.decrypt_key_arns) == (
        "customer",
        key,
        (key,),
    )
    assert record.byok_status == "ACCEPTED"
    assert [r["detail-type"] for r in results()] == ["byok-accepted"]
    platform.envelope.flush(org)
    sealed = {name: body for name, body in data.items() if name != "export.bin"}
    assert read_all(platform, org, list(sealed)) == sealed
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    exported = s3.get_object(Bucket=bucket, Key=f"orgs/{org}/export.bin")["Body"].read()
    assert exported == data["export.bin"]
    for name in data:
        head = s3.head_object(Bucket=bucket, Key=f"orgs/{org}/{name}")
        assert key in (head["Metadata"].get("orgkms-key-arn"), head.get("SSEKMSKeyId")), name
    assert old_key != key


def test_a_customer_revoking_after_byok_locks_the_platform_out(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    from orgkms.errors import KeyUnavailable

    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"customer data"), 13)
    key = customer_key(workflow, org)
    assert (
        send_and_wait(workflow, "byok-requested", {"organizationId": org, "keyArn": key})["status"]
        == "SUCCEEDED"
    )

    workflow.customer_kms().disable_key(KeyId=key)
    platform.envelope.flush(org)
    try:
        platform.store.get(org, "a.txt", io.BytesIO())
        raise AssertionError("read the data of an org whose customer revoked its key")
    except KeyUnavailable as refused:
        assert "key unavailable" in str(refused)


def test_a_compromised_org_key_is_replaced_re_keyed_and_retired(
    workflow: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org = create_org()
    data = seed(platform, workflow, org)
    compromised = platform.lookup(org).encrypt_key_arn
    started = workflow.listen(new_org("compromise"), ["key-compromise-started"])

    execution = send_and_wait(
        workflow, "key-compromised", {"organizationId": org, "reason": "leaked"}
    )

    assert execution["status"] == "SUCCEEDED", execution.get("result")
    assert [e["detail-type"] for e in started()] == ["key-compromise-started"]
    record = platform.lookup(org)
    assert record.encrypt_key_arn != compromised
    assert record.decrypt_key_arns == (record.encrypt_key_arn,)
    kms = workflow.client("kms")
    state = kms.describe_key(KeyId=compromised)["KeyMetadata"]
    assert state["KeyState"] == "PendingDeletion"
    alias = kms.describe_key(KeyId=f"alias/org-{org}-encryption")["KeyMetadata"]["Arn"]
    assert alias == record.encrypt_key_arn
    platform.envelope.flush(org)
    sealed = {name: body for name, body in data.items() if name != "export.bin"}
    assert read_all(platform, org, list(sealed)) == sealed


def test_a_compromise_that_keeps_old_versions_still_disables_the_key_at_once(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"v1"), 2)
    compromised = platform.lookup(org).encrypt_key_arn
    detail = {"organizationId": org, "noncurrentVersions": "report"}

    execution = send_and_wait(workflow, "key-compromised", detail)

    assert execution["status"] == "SUCCEEDED", execution.get("result")
    state = workflow.client("kms").describe_key(KeyId=compromised)["KeyMetadata"]["KeyState"]
    assert state == "Disabled"


def test_a_compromise_of_a_customers_key_is_left_to_the_customer(
    workflow: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org = create_org()
    key = customer_key(workflow, org)
    put_on_customer_key(platform, org, key)
    failed = workflow.listen(new_org("refused"), ["migration-failed"])

    workflow.put_events([control_plane_entry("key-compromised", {"organizationId": org})])
    workflow.deliver()

    (answer,) = failed()
    assert answer["status"] == "REFUSED"
    assert "customer" in answer["reason"]
    assert platform.lookup(org).encrypt_key_arn == key


def test_rotation_with_rekey_moves_the_data_onto_a_new_org_key(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"old material"), 12)
    old = platform.lookup(org).encrypt_key_arn

    execution = send_and_wait(workflow, "rotate-due", {"organizationId": org, "rekey": True})

    assert execution["status"] == "SUCCEEDED", execution.get("result")
    record = platform.lookup(org)
    assert record.encrypt_key_arn != old and record.decrypt_key_arns == (record.encrypt_key_arn,)
    assert record.last_rotation == "rekey"
    platform.envelope.flush(org)
    assert read_all(platform, org, ["a.txt"]) == {"a.txt": b"old material"}
