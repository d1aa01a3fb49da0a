"""The one exception hierarchy of orgkms.

Every error a caller can meet derives from :class:`OrgKmsError`. botocore's ``ClientError`` is
translated at the AWS boundary (``raise ... from err``) into one of these, naming the organization
and key ARN, never the data.
"""

# KMS error codes that mean the key has been taken away (disabled, scheduled for deletion, not
# imported, our access removed): the organization's key is unavailable until it comes back.
# Throttling and internal errors are transient and change nothing.
REVOCATION_CODES = frozenset(
    {
        "DisabledException",
        "KMSInvalidStateException",
        "AccessDeniedException",
        "NotFoundException",
        "KeyUnavailableException",
    }
)


class OrgKmsError(Exception):
    """Base class: anything orgkms refuses or fails to do."""


class ConfigurationError(OrgKmsError):
    """A required setting (table, bucket, bus, stack output) is missing or wrong."""


class InvalidEvent(OrgKmsError):
    """A control-plane event that can never succeed: not JSON, unknown type, invalid fields."""


class OrgNotFound(OrgKmsError):
    """The registry has no organization with this id."""


class OrgNotReady(OrgKmsError):
    """The organization exists but its key is not usable yet (still being created)."""


class KeyUnavailable(OrgKmsError):
    """KMS refused to use the organization's key: disabled, pending deletion, or access denied."""


class KeyProvisioningError(OrgKmsError):
    """Creating or configuring an organization key failed; the event is retried."""


class DecryptionRefused(OrgKmsError):
    """The ciphertext cannot be decrypted for the requested organization.

    Raised alike for another organization's message, a different data type, a corrupt, truncated
    or tampered message, and garbage. The message names only the organization the caller asked
    for, so it reveals nothing about the plaintext or about any other organization.
    """

    def __init__(self, org_id: str) -> None:
        super().__init__(
            f"ciphertext refused for organization {org_id!r}: it belongs to another organization "
            "or data type, or it is corrupt or tampered"
        )
        self.org_id = org_id


class OrgErased(OrgNotReady):
    """The organization was erased: its keys are disabled and scheduled for deletion, and no
    encrypt, decrypt, put or get is served for it any more."""


class ErasureRefused(OrgKmsError):
    """An erasure, or its cancellation, was refused before anything changed; the message says why
    (unknown or already erased organization, window outside 7-30 days, data under a key that is not
    being destroyed, deletion window over)."""
