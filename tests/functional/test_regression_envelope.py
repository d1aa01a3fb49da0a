"""Found in review: how OrgEnvelope classifies failures, and what it checks before KMS."""

import io
import json
import tracemalloc
from typing import Any

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from orgkms.envelope import ALGORITHM, OrgEnvelope
from orgkms.errors import DecryptionRefused

SECRET = b"account 4242: balance 1,000,000"


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Any:
        yield self._payload


def _kms_error(code: str, status: int) -> AWSResponse:
    body = json.dumps({"__type": code, "message": "simulated"}).encode()
    return AWSResponse(
        "https://kms.us-east-1.amazonaws.com/",
        status,
        {"content-type": "application/x-amz-json-1.1"},
        _Body(body),
    )


@pytest.mark.parametrize(
    "failure",
    [
        lambda: _kms_error("ThrottlingException", 400),
        lambda: _kms_error("KMSInternalException", 500),
        lambda: (_ for _ in ()).throw(EndpointConnectionError(endpoint_url="https://kms")),
    ],
    ids=["throttled", "kms-internal-error", "kms-unreachable"],
)
def test_a_kms_outage_is_not_reported_as_a_tampered_ciphertext(
    platform: Any, create_org: Any, failure: Any
) -> None:
    """Fixed (medium): transient KMS failures raise DecryptionRefused ("corrupt or tampered").

    decrypt_stream maps every exception that is not OrgNotReady/KeyUnavailable/OSError, and
    whose last KMS error code is not in UNAVAILABLE_CODES, to DecryptionRefused. Throttling,
    KMSInternalException, DependencyTimeoutException or a network error (EndpointConnectionError
    is not a ClientError, so no code is recorded at all) therefore tell the caller the org's
    valid ciphertext "belongs to another organization ... or is corrupt or tampered", and the
    CLI exits 3 (refused). Callers that quarantine or delete refused records lose good data
    during a KMS brown-out, and the refusal counters fire as if under attack.

    Fix: classify by cause: only ESDK deserialization/authentication failures and the context
    check are refusals; KMS/transport errors (ClientError codes outside a refusal list,
    BotoCoreError) become KeyUnavailable or a distinct retriable error.
    """
    org = create_org()
    ciphertext = platform.envelope.encrypt(org, "invoice", SECRET)
    session = botocore.session.Session()

    def outage(**_: Any) -> AWSResponse:
        return failure()

    session.register("before-send.kms.Decrypt", outage)
    envelope = OrgEnvelope(platform.lookup, platform.settings.cache, botocore_session=session)

    with pytest.raises(Exception) as raised:
        envelope.decrypt(org, ciphertext)

    assert not isinstance(raised.value, DecryptionRefused)


def test_a_forged_message_naming_the_orgs_key_with_another_context_is_refused_not_unavailable(
    stack: Any, platform: Any, create_org: Any
) -> None:
    """Fixed (low/medium): the context is checked only after KMS Decrypt, so in AWS a forged
    message is reported as "KeyUnavailable" for the victim org.

    Anyone can write a message header whose EDK names org B's key ARN and whose context says
    OrganizationId=A (the EDK bytes need not be valid). decrypt(B, ...) sends it to KMS before
    looking at the context; B's key policy (AllowDataAccessForThisOrganizationOnly) denies
    Decrypt for context A with AccessDeniedException, which decrypt_stream maps to
    KeyUnavailable("KMS refused its key"): operators are told B's key is revoked, and each
    forged message costs a KMS call. moto does not evaluate key policies; the hook below answers
    as AWS would for that policy.

    Fix: read the header, run _check_context on it, and only then obtain decryption materials
    (e.g. a CMM wrapper that checks request.encryption_context before delegating).
    """
    a, b = create_org(), create_org()
    b_key = platform.registry.get(b).encrypt_key_arn
    forger = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    forged, _ = forger.encrypt(
        source=SECRET,
        key_provider=StrictAwsKmsMasterKeyProvider(key_ids=[b_key]),
        encryption_context={"OrganizationId": a, "DataType": "invoice"},
        algorithm=ALGORITHM,
    )
    session = botocore.session.Session()
    kms_requests: list[dict[str, Any]] = []

    def key_policy(request: Any, **_: Any) -> AWSResponse | None:
        sent = json.loads(request.body)
        kms_requests.append(sent)
        if sent.get("EncryptionContext", {}).get("OrganizationId") != b:
            return _kms_error("AccessDeniedException", 400)
        return None

    session.register("before-send.kms.Decrypt", key_policy)
    envelope = OrgEnvelope(platform.lookup, platform.settings.cache, botocore_session=session)

    with pytest.raises(Exception) as raised:
        envelope.decrypt(b, forged)

    assert isinstance(raised.value, DecryptionRefused), type(raised.value).__name__
    assert kms_requests == []


def test_unframed_messages_are_refused_and_framed_ones_decrypt_in_flat_memory(
    platform: Any, create_org: Any
) -> None:
    """Fixed (low): a non-framed message was decrypted whole in memory.

    README: decrypt_stream "streams in 64 KiB frames: memory stays flat whatever the size".
    The envelope accepts any Encryption SDK message for the org, including non-framed ones
    (content type 1) and ones with a header frame length up to 2 GiB, which the SDK reads and
    buffers whole (it reads body_length bytes in one call). A 32 MiB non-framed message below
    costs well over 32 MiB of Python memory; a large one exhausts a Lambda's memory.

    Fix: after reading the header, refuse content_type != FRAMED_DATA or frame_length larger
    than FRAME_LENGTH (and pass max_body_length to the SDK client).
    """
    org = create_org()
    record = platform.registry.get(org)
    writer = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    size = 16 * 1024 * 1024
    message, _ = writer.encrypt(
        source=b"\0" * size,
        key_provider=StrictAwsKmsMasterKeyProvider(key_ids=[record.encrypt_key_arn]),
        encryption_context={"OrganizationId": org, "DataType": "blob"},
        algorithm=ALGORITHM,
        frame_length=0,  # non-framed
    )

    class Discard(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            return len(b)

    # Warm up (KMS client, service model, data-key cache) so only the decryption is measured.
    warm = platform.envelope.encrypt(org, "blob", b"warm")
    platform.envelope.decrypt(org, warm)
    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt_stream(org, io.BytesIO(message), Discard())
    framed = platform.envelope.encrypt(org, "blob", b"\0" * size)
    source = io.BytesIO(framed)
    del message, framed
    tracemalloc.start()
    try:
        platform.envelope.decrypt_stream(org, source, Discard())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a {size >> 20} MiB message"
