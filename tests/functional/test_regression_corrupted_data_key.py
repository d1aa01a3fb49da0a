"""Found by the isolation fuzz: a tampered message reported as an unusable key."""

import io
from typing import Any

from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from orgkms.errors import DecryptionRefused


def test_a_flipped_bit_in_the_encrypted_data_key_is_a_refusal(
    platform: Any, create_org: Any
) -> None:
    """Fixed (low, emulator fidelity): flipping a bit inside the encrypted data key's key
    reference made the emulator answer AccessDeniedException, which the envelope reports as
    KeyUnavailable ("KMS could not use its key"), and `orgkms demo --data DIR` with small files
    crashed on its own tampering demonstration. AWS answers a corrupted ciphertext blob with
    InvalidCiphertextException: a refusal, DecryptionRefused.

    Fix: fidelity.py restores AWS's answer for a blob naming no key of the region.
    """
    org = create_org()
    blob = platform.envelope.encrypt(org, "note", b"short")
    header, _ = deserialize_header(io.BytesIO(blob), 3)
    [edk] = header.encrypted_data_keys
    at = blob.index(edk.encrypted_data_key) + 5  # inside the blob's key reference
    tampered = blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]

    try:
        platform.envelope.decrypt(org, tampered)
    except DecryptionRefused:
        return
    raise AssertionError("a tampered data key was not refused as tampered")
