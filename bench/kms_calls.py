"""Benchmark 4: KMS calls for N records of one organization (10,000; quick: 2,000).

* ours: the organization's cached materials are dropped first (``OrgEnvelope.flush``), then
  every record is encrypted with ``OrgEnvelope.encrypt`` and the message decrypted with
  ``OrgEnvelope.decrypt``; the figure is the growth of ``envelope.kms_calls`` (every KMS API call
  made through the envelope's botocore session);
* naive: every record encrypted by KMS itself (``kms.encrypt``, 1 KiB fits its 4 KiB limit) and
  decrypted by ``kms.decrypt``; all N records are really sent to the emulator (in-process) and the
  calls counted by a botocore ``after-call`` hook, not computed.
"""

import time
from typing import Any

from benchlib import CONTEXT, DATA_TYPE, ORG, BenchStack, Figure, Report, random_records

RECORD_SIZE = 1024


def run(bench: BenchStack, count: int) -> Report:
    records = random_records(count, RECORD_SIZE)
    ours, ours_s = _ours(bench, records)
    naive_encrypt, naive_decrypt, naive_s = _naive(bench, records)
    name = f"{count:,} records"
    figures = [
        Figure("4", f"{name}: ours, KMS calls", ours, "calls", goal=2),
        Figure("4", f"{name}: naive kms.Encrypt calls", naive_encrypt, "calls"),
        Figure("4", f"{name}: naive kms.Decrypt calls", naive_decrypt, "calls"),
    ]
    details = {
        "kms_calls": {
            "records": count,
            "ours": ours,
            "ours_s": ours_s,
            "naive_encrypt": naive_encrypt,
            "naive_decrypt": naive_decrypt,
            "naive_s": naive_s,
        }
    }
    return Report(figures=figures, details=details)


def _ours(bench: BenchStack, records: list[bytes]) -> tuple[int, float]:
    """KMS calls made by the envelope for encrypt + decrypt of every record, and seconds."""
    envelope = bench.envelope
    envelope.flush(ORG)
    before = envelope.kms_calls
    start = time.perf_counter()
    for record in records:
        message = envelope.encrypt(ORG, DATA_TYPE, record)
        if envelope.decrypt(ORG, message, DATA_TYPE) != record:
            raise RuntimeError("a record did not survive its round trip")
    return envelope.kms_calls - before, time.perf_counter() - start


def _naive(bench: BenchStack, records: list[bytes]) -> tuple[int, int, float]:
    """KMS Encrypt and Decrypt calls when KMS encrypts each record itself, and seconds."""
    kms = bench.stack.client("kms")
    counts = {"Encrypt": 0, "Decrypt": 0}

    def count(model: Any, **_: Any) -> None:
        if model.name in counts:
            counts[model.name] += 1

    kms.meta.events.register("after-call.kms", count)
    start = time.perf_counter()
    for record in records:
        blob = kms.encrypt(KeyId=bench.key_arn, Plaintext=record, EncryptionContext=CONTEXT)
        plain = kms.decrypt(
            CiphertextBlob=blob["CiphertextBlob"], KeyId=bench.key_arn, EncryptionContext=CONTEXT
        )
        if plain["Plaintext"] != record:
            raise RuntimeError("KMS did not return the record")
    return counts["Encrypt"], counts["Decrypt"], time.perf_counter() - start
