"""Benchmark 2: streaming throughput, ours against raw AES-256-GCM over the same bytes.

One random buffer (64 MiB; quick: 16 MiB) held in memory:

* ours: ``OrgEnvelope.encrypt_stream`` from an ``io.BytesIO`` into a sink that discards, then
  ``OrgEnvelope.decrypt_stream`` of the same message into a discarding sink (the message is made
  once, untimed, into memory; one untimed pass checks it decrypts to the original bytes);
* raw: AESGCM over 64 KiB chunks, a random nonce per chunk, every chunk encrypted then every
  chunk decrypted.

Each side is warmed up once, then timed three times; the median counts. Figure: the time ratio
ours/raw for encrypt + decrypt.
"""

import io
import os

from benchlib import DATA_TYPE, MIB, ORG, BenchStack, Figure, NullSink, Report, median_time
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RAW_CHUNK = 64 * 1024
REPEATS = 3


def run(bench: BenchStack, size: int) -> Report:
    data = os.urandom(size)
    enc, dec = _ours(bench, data)
    raw = _raw(data)
    ours = enc + dec
    mib = size / MIB
    name = f"stream {mib:,.0f} MiB"
    figures = [
        Figure("2", f"{name}: ours encrypt_stream", mib / enc, "MiB/s"),
        Figure("2", f"{name}: ours decrypt_stream", mib / dec, "MiB/s"),
        Figure("2", f"{name}: ours encrypt + decrypt", ours, "s"),
        Figure("2", f"{name}: raw AES-GCM encrypt + decrypt", raw, "s"),
        Figure("2", "ours / raw AES-GCM (stream time)", ours / raw, "x", goal=4),
    ]
    details = {
        "streaming": {"bytes": size, "ours_encrypt_s": enc, "ours_decrypt_s": dec, "raw_s": raw}
    }
    return Report(figures=figures, details=details)


def _ours(bench: BenchStack, data: bytes) -> tuple[float, float]:
    """Median seconds of encrypt_stream and of decrypt_stream over ``data``."""
    envelope = bench.envelope
    message = io.BytesIO()
    envelope.encrypt_stream(ORG, DATA_TYPE, io.BytesIO(data), message)
    _verify(bench, message.getvalue(), data)

    def encrypt() -> None:
        envelope.encrypt_stream(ORG, DATA_TYPE, io.BytesIO(data), NullSink())

    def decrypt() -> None:
        sink = NullSink()
        envelope.decrypt_stream(ORG, io.BytesIO(message.getvalue()), sink, DATA_TYPE)
        if sink.count != len(data):
            raise RuntimeError("decrypt_stream wrote the wrong number of bytes")

    return median_time(encrypt, REPEATS), median_time(decrypt, REPEATS)


def _verify(bench: BenchStack, message: bytes, data: bytes) -> None:
    out = io.BytesIO()
    bench.envelope.decrypt_stream(ORG, io.BytesIO(message), out, DATA_TYPE)
    if out.getvalue() != data:
        raise RuntimeError("the streamed message did not decrypt to its plaintext")


def _raw(data: bytes) -> float:
    """Median seconds to AES-GCM encrypt then decrypt ``data`` in 64 KiB chunks."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    view = memoryview(data)

    def round_trip() -> None:
        sealed = []
        for offset in range(0, len(view), RAW_CHUNK):
            nonce = os.urandom(12)
            sealed.append((nonce, aead.encrypt(nonce, view[offset : offset + RAW_CHUNK], None)))
        size = sum(len(aead.decrypt(nonce, box, None)) for nonce, box in sealed)
        if size != len(data):
            raise RuntimeError("raw AES-GCM round trip lost bytes")

    round_trip()
    return median_time(round_trip, REPEATS)
