"""The fidelity layer: AWS behaviours moto lacks, restored; and the emulator facts they rest on."""

from typing import Any

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def key(stack: Any) -> Any:
    kms = stack.client("kms")
    return kms, kms.create_key()["KeyMetadata"]["Arn"]


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_a_disabled_key_cannot_encrypt_or_decrypt(key: Any) -> None:
    kms, arn = key
    blob = kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=arn)

    with pytest.raises(ClientError) as encrypt:
        kms.encrypt(KeyId=arn, Plaintext=b"x")
    with pytest.raises(ClientError) as decrypt:
        kms.decrypt(CiphertextBlob=blob)
    with pytest.raises(ClientError) as data_key:
        kms.generate_data_key(KeyId=arn, KeySpec="AES_256")

    assert code(encrypt) == code(decrypt) == code(data_key) == "DisabledException"


def test_a_key_pending_deletion_is_in_an_invalid_state(key: Any) -> None:
    kms, arn = key
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)

    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=arn, Plaintext=b"x")

    assert code(refused) == "KMSInvalidStateException"
    kms.cancel_key_deletion(KeyId=arn)  # AWS leaves it Disabled, as moto does
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"


@pytest.mark.parametrize("days", [1, 6, 31])
def test_deletion_windows_outside_7_to_30_days_are_refused(key: Any, days: int) -> None:
    kms, arn = key
    with pytest.raises(ClientError) as refused:
        kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=days)
    assert code(refused) == "ValidationException"
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_key_arn_of_another_account_is_not_found(key: Any) -> None:
    kms, arn = key
    foreign = arn.replace(":123456789012:", ":210987654321:")

    with pytest.raises(ClientError) as refused:
        kms.encrypt(KeyId=foreign, Plaintext=b"x")

    assert code(refused) == "NotFoundException"


def test_sqs_target_events_carry_the_account(stack: Any, create_org: Any, platform: Any) -> None:
    """Without the fix moto drops `account`, and Powertools' EventBridge model refuses the event."""
    org = create_org()
    assert platform.registry.get(org).ready
