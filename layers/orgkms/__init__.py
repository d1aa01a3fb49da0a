"""orgkms: one KMS key per organization, envelope encryption that cannot cross organizations.

The package is imported by Lambda handlers on every cold start, so this module imports nothing
heavy: the Encryption SDK is loaded only by :mod:`orgkms.envelope`.
"""

from orgkms.errors import (
    ConfigurationError,
    DecryptionRefused,
    InvalidEvent,
    KeyUnavailable,
    OrgKmsError,
    OrgNotFound,
    OrgNotReady,
)

__all__ = [
    "ConfigurationError",
    "DecryptionRefused",
    "InvalidEvent",
    "KeyUnavailable",
    "OrgKmsError",
    "OrgNotFound",
    "OrgNotReady",
]
__version__ = "0.1.0"
