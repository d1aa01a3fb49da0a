"""Benchmark 2: streaming throughput, ours against raw AES-256-GCM over the same bytes.

One random buffer (64 MiB; quick: 16 MiB) held in memory. Both sides are measured the same way:
encryption reads the buffer and throws its output away; decryption reads ciphertext made
beforehand (untimed) and throws the plaintext away.

* ours: ``OrgEnvelope.encrypt_stream`` from an ``io.BytesIO`` into a sink that discards, and
  ``OrgEnvelope.decrypt_stream`` of a message made beforehand into a discarding sink (one
  untimed pass first checks that the message decrypts to the original bytes);
* raw: AESGCM over 64 KiB chunks with a random nonce per chunk, encrypting every chunk, and
  decrypting chunks sealed beforehand.

Each timing is the median of three runs after a warm-up. Figure: the ratio ours/raw of the time
to encrypt plus the time to decrypt.
"""

import io
import os
from collections.abc import Callable

from benchlib import DATA_TYPE, MIB, ORG, BenchStack, Figure, NullSink, Report, median_time
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RAW_CHUNK = 64 * 1024
REPEATS = 3


def run(bench: BenchStack, size: int) -> Report:
    data = os.urandom(size)
    ours_enc, ours_dec = _encrypt_decrypt_times(*_ours(bench, data))
    raw_enc, raw_dec = _encrypt_decrypt_times(*_raw(data))
    ours, raw = ours_enc + ours_dec, raw_enc + raw_dec
    mib = size / MIB
    name = f"stream {mib:,.0f} MiB"
    figures = [
        Figure("2", f"{name}: ours encrypt_stream", mib / ours_enc, "MiB/s"),
        Figure("2", f"{name}: ours decrypt_stream", mib / ours_dec, "MiB/s"),
        Figure("2", f"{name}: raw AES-GCM encrypt", mib / raw_enc, "MiB/s"),
        Figure("2", f"{name}: raw AES-GCM decrypt", mib / raw_dec, "MiB/s"),
        Figure("2", f"{name}: ours encrypt + decrypt", ours, "s"),
        Figure("2", f"{name}: raw AES-GCM encrypt + decrypt", raw, "s"),
        Figure("2", "ours / raw AES-GCM (stream time)", ours / raw, "x", goal=4),
    ]
    times = {"ours_encrypt_s": ours_enc, "ours_decrypt_s": ours_dec}
    times |= {"raw_encrypt_s": raw_enc, "raw_decrypt_s": raw_dec}
    return Report(figures=figures, details={"streaming": {"bytes": size, **times}})


Step = Callable[[], None]


def _encrypt_decrypt_times(encrypt: Step, decrypt: Step) -> tuple[float, float]:
    """Median seconds of each, after one warm-up call of each."""
    encrypt()
    decrypt()
    return median_time(encrypt, REPEATS), median_time(decrypt, REPEATS)


def _ours(bench: BenchStack, data: bytes) -> tuple[Step, Step]:
    envelope = bench.envelope
    out = io.BytesIO()
    envelope.encrypt_stream(ORG, DATA_TYPE, io.BytesIO(data), out)
    message = out.getvalue()
    _verify(bench, message, data)

    def encrypt() -> None:
        envelope.encrypt_stream(ORG, DATA_TYPE, io.BytesIO(data), NullSink())

    def decrypt() -> None:
        sink = NullSink()
        envelope.decrypt_stream(ORG, io.BytesIO(message), sink, DATA_TYPE)
        if sink.count != len(data):
            raise RuntimeError("decrypt_stream wrote the wrong number of bytes")

    return encrypt, decrypt


def _verify(bench: BenchStack, message: bytes, data: bytes) -> None:
    out = io.BytesIO()
    bench.envelope.decrypt_stream(ORG, io.BytesIO(message), out, DATA_TYPE)
    if out.getvalue() != data:
        raise RuntimeError("the streamed message did not decrypt to its plaintext")


def _raw(data: bytes) -> tuple[Step, Step]:
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    view = memoryview(data)
    chunks = [view[offset : offset + RAW_CHUNK] for offset in range(0, len(view), RAW_CHUNK)]
    sealed = [(nonce, aead.encrypt(nonce, chunk, None)) for nonce, chunk in _nonced(chunks)]

    def encrypt() -> None:
        for nonce, chunk in _nonced(chunks):
            aead.encrypt(nonce, chunk, None)

    def decrypt() -> None:
        size = sum(len(aead.decrypt(nonce, box, None)) for nonce, box in sealed)
        if size != len(data):
            raise RuntimeError("raw AES-GCM round trip lost bytes")

    return encrypt, decrypt


def _nonced(chunks: list[memoryview]) -> list[tuple[bytes, memoryview]]:
    """Each chunk with a fresh random 12-byte nonce."""
    return [(os.urandom(12), chunk) for chunk in chunks]
