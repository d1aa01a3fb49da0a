"""Benchmark 1: 1 KiB records, encrypt + decrypt round trip, time per record.

Three ways over the same N random 1 KiB records, one after the other, each warmed up by one
untimed round trip (clients built, first data key fetched):

* ours: ``OrgEnvelope.encrypt`` then ``OrgEnvelope.decrypt`` (committing, non-signing suite, data
  keys cached per organization);
* plain Encryption SDK with default settings: ``EncryptionSDKClient()`` (default commitment
  policy and algorithm suite, which signs), ``StrictAwsKmsMasterKeyProvider`` listing the org key,
  no caching, context ``{OrganizationId, DataType}``; every record costs a GenerateDataKey and a
  Decrypt call to KMS (the emulator, in-process);
* raw AES-256-GCM (``cryptography``'s AESGCM), one key, a random 12-byte nonce per record.

Each decrypted record is compared with its plaintext. Figures: time per record and the ratios
ours/plain and ours/raw.
"""

import os
import time
from collections.abc import Callable

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from benchlib import CONTEXT, DATA_TYPE, ORG, BenchStack, Figure, Report, random_records
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORD_SIZE = 1024
RoundTrip = Callable[[bytes], bytes]


def run(bench: BenchStack, count: int) -> Report:
    records = random_records(count, RECORD_SIZE)
    plain_trip, plain_kms_calls = _plain_sdk(bench.key_arn)
    ours = _per_record(_ours(bench), records)
    plain = _per_record(plain_trip, records)
    raw = _per_record(_raw_aes_gcm(), records)
    name = f"{count:,} x 1 KiB round trip"
    figures = [
        Figure("1", f"{name}: ours, per record", ours * 1e3, "ms"),
        Figure("1", f"{name}: plain ESDK, per record", plain * 1e3, "ms"),
        Figure("1", f"{name}: raw AES-GCM, per record", raw * 1e6, "us"),
        Figure("1", "ours / plain ESDK (time per record)", ours / plain, "x", goal=0.1),
        Figure("1", "ours / raw AES-GCM (time per record)", ours / raw, "x", goal=50),
    ]
    details = {
        "records": {
            "count": count,
            "size": RECORD_SIZE,
            "ours_s": ours,
            "plain_s": plain,
            "raw_s": raw,
            "plain_kms_calls": plain_kms_calls[0],
        },
    }
    return Report(figures=figures, details=details)


def _per_record(round_trip: RoundTrip, records: list[bytes]) -> float:
    """Seconds per record of ``round_trip`` over ``records``, after one warm-up call."""
    _check(round_trip, records[0])
    start = time.perf_counter()
    for record in records:
        if round_trip(record) != record:
            raise RuntimeError("a record did not survive its round trip")
    return (time.perf_counter() - start) / len(records)


def _check(round_trip: RoundTrip, record: bytes) -> None:
    if round_trip(record) != record:
        raise RuntimeError("warm-up round trip failed")


def _ours(bench: BenchStack) -> RoundTrip:
    envelope = bench.envelope

    def round_trip(record: bytes) -> bytes:
        ciphertext = envelope.encrypt(ORG, DATA_TYPE, record)
        plaintext: bytes = envelope.decrypt(ORG, ciphertext, DATA_TYPE)
        return plaintext

    return round_trip


def _plain_sdk(key_arn: str) -> tuple[RoundTrip, list[int]]:
    """The Encryption SDK as its README shows it; also returns a live count of its KMS calls."""
    calls = [0]
    session = botocore.session.Session()
    session.register("after-call.kms", lambda **_: calls.__setitem__(0, calls[0] + 1))
    client = aws_encryption_sdk.EncryptionSDKClient()
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn], botocore_session=session)

    def round_trip(record: bytes) -> bytes:
        ciphertext, _ = client.encrypt(
            source=record, key_provider=provider, encryption_context=CONTEXT
        )
        plaintext, _ = client.decrypt(source=ciphertext, key_provider=provider)
        return bytes(plaintext)

    return round_trip, calls


def _raw_aes_gcm() -> RoundTrip:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def round_trip(record: bytes) -> bytes:
        nonce = os.urandom(12)
        return aead.decrypt(nonce, aead.encrypt(nonce, record, None), None)

    return round_trip
