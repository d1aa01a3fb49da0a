"""Envelope encryption: round trips, and every path by which one org might read another's data."""

import io
import json
from typing import Any

import pytest

from orgkms.envelope import OrgEnvelope
from orgkms.errors import DecryptionRefused, KeyUnavailable, OrgNotFound

SECRET = b"account 4242: balance 1,000,000"


@pytest.fixture
def two_orgs(create_org: Any) -> tuple[str, str]:
    return create_org(), create_org()


@pytest.fixture
def fresh_envelope(platform: Any) -> OrgEnvelope:
    """An envelope of its own (own caches and KMS call counter), as a new process would have."""
    return OrgEnvelope(platform.lookup, platform.settings.cache)


def test_round_trip_binds_org_and_type_and_nothing_unique(platform: Any, create_org: Any) -> None:
    org = create_org()
    ciphertext = platform.envelope.encrypt(org, "invoice", SECRET)

    context = platform.envelope.decrypt_stream(org, io.BytesIO(ciphertext), io.BytesIO())

    assert platform.envelope.decrypt(org, ciphertext, "invoice") == SECRET
    assert context == {"OrganizationId": org, "DataType": "invoice"}
    assert SECRET not in ciphertext


def test_another_orgs_ciphertext_is_refused(platform: Any, two_orgs: tuple[str, str]) -> None:
    a, b = two_orgs
    ciphertext = platform.envelope.encrypt(a, "invoice", SECRET)

    with pytest.raises(DecryptionRefused) as refused:
        platform.envelope.decrypt(b, ciphertext)

    assert a not in str(refused.value) and SECRET.decode() not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_orgs_on_the_same_shared_key_cannot_read_each_other(platform: Any, create_org: Any) -> None:
    a, b = create_org(keyMode="shared"), create_org(keyMode="shared")
    assert platform.registry.get(a).encrypt_key_arn == platform.registry.get(b).encrypt_key_arn
    ciphertext = platform.envelope.encrypt(a, "invoice", SECRET)

    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(b, ciphertext)
    assert platform.envelope.decrypt(a, ciphertext) == SECRET


def test_wrong_data_type_is_refused(platform: Any, create_org: Any) -> None:
    org = create_org()
    ciphertext = platform.envelope.encrypt(org, "invoice", SECRET)

    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(org, ciphertext, "payroll")


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: b"",
        lambda c: b"garbage" * 10,
        lambda c: c[: len(c) // 2],
        lambda c: c[:-1],
        lambda c: c + c,
        lambda c: c[:40] + bytes([c[40] ^ 1]) + c[41:],
        lambda c: c[:-20] + bytes([c[-20] ^ 0x80]) + c[-19:],
        lambda c: bytes(len(c)),
    ],
    ids=[
        "empty",
        "garbage",
        "half",
        "last-byte-cut",
        "concatenated",
        "header-flip",
        "body-flip",
        "zeros",
    ],
)
def test_corrupt_truncated_or_tampered_ciphertext_is_refused(
    platform: Any, create_org: Any, damage: Any
) -> None:
    org = create_org()
    ciphertext = platform.envelope.encrypt(org, "invoice", SECRET)

    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(org, damage(ciphertext))


def test_a_message_whose_context_claims_another_org_is_refused(
    platform: Any, stack: Any, create_org: Any
) -> None:
    """Encrypted by someone with the shared key but a context naming org b: b refuses org a's
    ciphertext, and a refuses a message crafted to carry b's context."""
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    a, b = create_org(keyMode="shared"), create_org(keyMode="shared")
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[stack.outputs["SharedPlatformKeyArn"]]
    )
    crafted, _ = sdk.encrypt(
        source=SECRET,
        key_provider=provider,
        encryption_context={"OrganizationId": b, "DataType": "invoice"},
    )
    extra, _ = sdk.encrypt(
        source=SECRET,
        key_provider=provider,
        encryption_context={"OrganizationId": a, "DataType": "invoice", "Smuggled": "1"},
    )

    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(a, crafted)
    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(a, extra)


def test_a_cache_warmed_by_one_org_never_serves_another(
    fresh_envelope: OrgEnvelope, two_orgs: tuple[str, str]
) -> None:
    a, b = two_orgs
    ciphertext = fresh_envelope.encrypt(a, "invoice", SECRET)
    assert fresh_envelope.decrypt(a, ciphertext) == SECRET  # a's decrypt cache now holds the key

    with pytest.raises(DecryptionRefused):
        fresh_envelope.decrypt(b, ciphertext)
    assert fresh_envelope.counters(b).refusals == 1


def test_repointing_an_orgs_alias_later_changes_nothing(
    stack: Any, platform: Any, fresh_envelope: OrgEnvelope, two_orgs: tuple[str, str]
) -> None:
    a, b = two_orgs
    b_arn = platform.registry.get(b).encrypt_key_arn
    stack.client("kms").update_alias(AliasName=f"alias/org-{a}-encryption", TargetKeyId=b_arn)

    ciphertext = fresh_envelope.encrypt(a, "invoice", SECRET)

    assert json.dumps(platform.registry.get(a).encrypt_key_arn) != json.dumps(b_arn)
    assert platform.registry.get(a).encrypt_key_arn.encode() in ciphertext
    assert b_arn.encode() not in ciphertext
    with pytest.raises(DecryptionRefused):
        fresh_envelope.decrypt(b, ciphertext)


def test_data_keys_are_cached_per_org_so_many_records_cost_two_kms_calls(
    fresh_envelope: OrgEnvelope, create_org: Any
) -> None:
    org = create_org()
    before = fresh_envelope.kms_calls

    messages = [fresh_envelope.encrypt(org, "event", b"r%d" % i) for i in range(300)]
    plain = [fresh_envelope.decrypt(org, m) for m in messages]

    assert plain == [b"r%d" % i for i in range(300)]
    assert fresh_envelope.kms_calls - before == 2  # one GenerateDataKey, one Decrypt


def test_flushing_one_org_drops_its_cached_keys_only(
    fresh_envelope: OrgEnvelope, two_orgs: tuple[str, str]
) -> None:
    a, b = two_orgs
    fresh_envelope.encrypt(a, "x", b"1")
    fresh_envelope.encrypt(b, "x", b"1")
    before = fresh_envelope.kms_calls

    fresh_envelope.flush(a)
    fresh_envelope.encrypt(a, "x", b"2")
    fresh_envelope.encrypt(b, "x", b"2")

    assert fresh_envelope.kms_calls - before == 1  # only a needed a new data key


def test_cache_is_bounded_by_message_count(platform: Any, create_org: Any) -> None:
    from dataclasses import replace

    org = create_org()
    policy = replace(platform.settings.cache, max_messages=10)
    envelope = OrgEnvelope(platform.lookup, policy)

    for i in range(25):
        envelope.encrypt(org, "x", b"%d" % i)

    assert envelope.kms_calls == 3  # 10 + 10 + 5 messages


def test_unknown_org_is_a_clear_error(platform: Any) -> None:
    with pytest.raises(OrgNotFound, match="not registered"):
        platform.envelope.encrypt("nobody-here", "x", b"1")


def test_disabled_org_key_fails_closed(
    stack: Any, fresh_envelope: OrgEnvelope, platform: Any, create_org: Any
) -> None:
    """Relies on the fidelity layer: moto itself lets a disabled key encrypt."""
    org = create_org()
    ciphertext = fresh_envelope.encrypt(org, "x", SECRET)
    arn = platform.registry.get(org).encrypt_key_arn
    kms = stack.client("kms")
    kms.disable_key(KeyId=arn)
    fresh_envelope.flush(org)
    try:
        with pytest.raises(KeyUnavailable, match="DisabledException"):
            fresh_envelope.encrypt(org, "x", SECRET)
        with pytest.raises(KeyUnavailable, match="DisabledException"):
            fresh_envelope.decrypt(org, ciphertext)
    finally:
        kms.enable_key(KeyId=arn)
    assert fresh_envelope.decrypt(org, ciphertext) == SECRET


def test_streaming_round_trip_of_a_large_input(platform: Any, create_org: Any) -> None:
    org = create_org()
    data = bytes(range(256)) * (5 * 4096)  # 5 MiB
    encrypted, decrypted = io.BytesIO(), io.BytesIO()

    platform.envelope.encrypt_stream(org, "blob", io.BytesIO(data), encrypted)
    platform.envelope.decrypt_stream(org, io.BytesIO(encrypted.getvalue()), decrypted, "blob")

    assert decrypted.getvalue() == data
