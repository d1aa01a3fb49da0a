"""Erasure: keys disabled and scheduled for deletion, objects counted and deleted, every path
refuses the org afterwards, residue refuses without --force, cancellation within the window."""

import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from orgkms.config import CachePolicy
from orgkms.envelope import OrgEnvelope
from orgkms.erasure import ErasureService
from orgkms.errors import ErasureRefused, OrgErased
from orgkms.models import control_plane_entry


def service(platform: Any, clock: Any = time.time) -> ErasureService:
    return ErasureService(
        registry=platform.registry,
        s3=platform.client("s3"),
        bucket=platform.settings.data_bucket,
        kms_for_region=lambda region: platform.client("kms", region),
        stack_name=platform.settings.stack_name,
        cache_max_age_seconds=platform.settings.cache.max_age_seconds,
        audit=platform.audit,
        envelope=platform.envelope,
        clock=clock,
    )


def bucket_versions(stack: Any, platform: Any, org: str) -> list[dict[str, Any]]:
    listed = stack.client("s3").list_object_versions(
        Bucket=platform.settings.data_bucket, Prefix=f"orgs/{org}/"
    )
    return list(listed.get("Versions", []))


def key_state(stack: Any, arn: str) -> dict[str, Any]:
    return dict(stack.client("kms").describe_key(KeyId=arn)["KeyMetadata"])


def org_with_data(platform: Any, create_org: Any) -> tuple[str, bytes]:
    org = create_org()
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"first draft" * 100))
    platform.store.put(org, "doc", "a.txt", io.BytesIO(b"second draft" * 100))  # noncurrent
    platform.store.put(org, "doc", "dir/b.bin", io.BytesIO(bytes(5000)))
    return org, platform.envelope.encrypt(org, "doc", b"PLAINTEXT-CANARY")


def test_receipt_counts_match_the_bucket_and_keys_are_scheduled(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org, _ = org_with_data(platform, create_org)
    before = bucket_versions(stack, platform, org)
    key_arn = platform.registry.get(org).encrypt_key_arn

    receipt = service(platform).erase(org, window_days=7)

    current = [v for v in before if v["IsLatest"]]
    assert receipt["objects"] == len(current) == 2
    assert receipt["bytes"] == sum(v["Size"] for v in current)
    assert receipt["versions"] == len(before) == 3
    assert receipt["versionBytes"] == sum(v["Size"] for v in before)
    assert receipt["residue"] == [] and receipt["forced"] is False
    [key] = receipt["keys"]
    metadata = key_state(stack, key_arn)
    assert key == {
        "keyArn": key_arn,
        "action": "scheduled-deletion",
        "deletionDate": metadata["DeletionDate"].astimezone(UTC).isoformat(timespec="seconds"),
    }
    assert metadata["KeyState"] == "PendingDeletion"
    assert 6.9 < (metadata["DeletionDate"] - datetime.now(UTC)).total_seconds() / 86400 <= 7
    assert bucket_versions(stack, platform, org) == []


def test_receipt_names_the_audit_entry_that_records_it(platform: Any, create_org: Any) -> None:
    org, _ = org_with_data(platform, create_org)

    receipt = service(platform).erase(org)

    last = platform.audit.entries(org)[-1]
    assert last.action == "erased"
    assert receipt["auditEntry"] == {"sequence": last.sequence, "hash": last.hash}
    assert platform.registry.get(org).erasure_hash == last.hash
    assert last.fields["counts"]["objects"] == receipt["objects"]
    json.dumps(receipt)  # a JSON document as it stands


def test_after_erasure_the_library_refuses_every_operation(platform: Any, create_org: Any) -> None:
    org, ciphertext = org_with_data(platform, create_org)
    service(platform).erase(org)

    for attempt in (
        lambda: platform.envelope.encrypt(org, "doc", b"more"),
        lambda: platform.envelope.decrypt(org, ciphertext),
        lambda: platform.store.put(org, "doc", "c.txt", io.BytesIO(b"more")),
        lambda: platform.store.get(org, "a.txt", io.BytesIO()),
    ):
        with pytest.raises(OrgErased, match="was erased"):
            attempt()


def test_a_warm_process_refuses_within_the_cache_age_bound(platform: Any, create_org: Any) -> None:
    """Another process's envelope, warmed before the erasure, keeps its cached data key for at
    most the cache's max age; after that it re-reads the registry and refuses."""
    org, ciphertext = org_with_data(platform, create_org)
    now = [1000.0]
    warm = OrgEnvelope(platform.lookup, CachePolicy(max_age_seconds=60), clock=lambda: now[0])
    assert warm.decrypt(org, ciphertext) == b"PLAINTEXT-CANARY"

    service(platform).erase(org)
    now[0] += 61

    with pytest.raises(OrgErased):
        warm.decrypt(org, ciphertext)
    with pytest.raises(OrgErased):
        warm.encrypt(org, "doc", b"x")


def test_after_erasure_the_cli_refuses(
    platform: Any, create_org: Any, tmp_path: Any, capsysbinary: Any
) -> None:
    from orgkms.cli import main

    org, ciphertext = org_with_data(platform, create_org)
    sealed = tmp_path / "m.enc"
    sealed.write_bytes(ciphertext)
    service(platform).erase(org)

    for argv in (
        ["decrypt", "--org", org, str(sealed)],
        ["get", "--org", org, "a.txt"],
        ["encrypt", "--org", org, "--type", "doc", str(sealed)],
    ):
        capsysbinary.readouterr()
        code = main(argv)
        out, err = capsysbinary.readouterr()
        assert code == 1 and out == b"", argv
        assert b"was erased" in err and b"PLAINTEXT-CANARY" not in out + err


def test_the_erasure_event_erases_through_the_handler(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org, _ = org_with_data(platform, create_org)

    stack.put_events([control_plane_entry("org-erasure-requested", {"organizationId": org})])
    stack.deliver()

    record = platform.registry.get(org)
    assert record.status == "ERASED"
    assert key_state(stack, record.encrypt_key_arn)["KeyState"] == "PendingDeletion"
    assert platform.audit.entries(org)[-1].action == "erased"
    # The handler's process refuses the org too: a repeated request is refused, not retried.
    stack.put_events([control_plane_entry("org-erasure-requested", {"organizationId": org})])
    stack.deliver()
    assert stack.dead_letters("OrgErasureRequestedDLQUrl") == []
    assert [e.action for e in platform.audit.entries(org)].count("erased") == 1


def test_shared_key_residue_refuses_erasure_and_the_shared_key_is_untouched(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(keyMode="shared")
    platform.store.put(org, "doc", "legacy.txt", io.BytesIO(b"under the shared key"))
    shared = platform.settings.shared_key_arn

    with pytest.raises(ErasureRefused, match=r"1 object version\(s\).*legacy\.txt"):
        service(platform).erase(org)

    assert platform.registry.get(org).status == "READY"
    assert len(bucket_versions(stack, platform, org)) == 1
    assert key_state(stack, shared)["KeyState"] == "Enabled"


def test_force_erases_and_lists_the_residue_in_the_receipt(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    platform.store.put(org, "doc", "mine.txt", io.BytesIO(b"under the org key"))
    shared = platform.settings.shared_key_arn
    stack.client("s3").put_object(  # an SSE-KMS object under the shared key, no client-side key
        Bucket=platform.settings.data_bucket,
        Key=f"orgs/{org}/legacy.csv",
        Body=b"a,b\n",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=shared,
    )

    receipt = service(platform).erase(org, force=True)

    assert receipt["forced"] is True
    assert [(r["s3Key"], r["keyArn"], r["bytes"]) for r in receipt["residue"]] == [
        (f"orgs/{org}/legacy.csv", shared, 4)
    ]
    assert receipt["objects"] == 2
    assert key_state(stack, shared)["KeyState"] == "Enabled"
    assert platform.audit.entries(org)[-1].fields["residueVersions"] == 1


@pytest.mark.parametrize("days", [0, 1, 6, 31, 365])
def test_a_window_outside_7_to_30_days_is_refused_before_any_change(
    stack: Any, platform: Any, create_org: Any, days: int
) -> None:
    org = create_org()

    with pytest.raises(ErasureRefused, match="7 to 30 days"):
        service(platform).erase(org, window_days=days)

    record = platform.registry.get(org)
    assert record.status == "READY"
    assert key_state(stack, record.encrypt_key_arn)["KeyState"] == "Enabled"


def test_unknown_and_already_erased_orgs_are_refused(
    platform: Any, create_org: Any, new_org: Any
) -> None:
    org = create_org()
    service(platform).erase(org)

    with pytest.raises(ErasureRefused, match="not registered"):
        service(platform).erase(new_org())
    with pytest.raises(ErasureRefused, match="already erased"):
        service(platform).erase(org)


def test_cancel_within_the_window_re_enables_the_key(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    key_arn = platform.registry.get(org).encrypt_key_arn
    service(platform).erase(org, window_days=7)

    result = service(platform).cancel(org)

    assert result["keys"] == [{"keyArn": key_arn, "state": "Enabled"}]
    assert key_state(stack, key_arn)["KeyState"] == "Enabled"
    assert platform.registry.get(org).status == "READY"
    message = platform.envelope.encrypt(org, "doc", b"back again")
    assert platform.envelope.decrypt(org, message) == b"back again"
    assert platform.audit.entries(org)[-1].action == "erasure-cancelled"


def test_cancel_after_the_window_is_refused(stack: Any, platform: Any, create_org: Any) -> None:
    org = create_org()
    service(platform).erase(org, window_days=7)
    eight_days_later = time.time() + 8 * 86400

    with pytest.raises(ErasureRefused, match="too late to cancel"):
        service(platform, clock=lambda: eight_days_later).cancel(org)

    record = platform.registry.get(org)
    assert record.status == "ERASED"
    assert key_state(stack, record.encrypt_key_arn)["KeyState"] == "PendingDeletion"


def test_cancel_of_an_org_that_is_not_erased_is_refused(platform: Any, create_org: Any) -> None:
    with pytest.raises(ErasureRefused, match="not erased"):
        service(platform).cancel(create_org())
