"""Organization ids: checked once at the edge, then used exactly as given.

Ids are case-sensitive and never normalized: ``Acme`` and ``acme`` are two organizations. The
charset is ASCII only, so Unicode look-alikes are rejected rather than folded, and every id is
valid as it stands in a KMS alias name, an S3 key prefix and a DynamoDB key.
"""

import re

ORG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$"
_ORG_ID_RE = re.compile(ORG_ID_PATTERN)
DATA_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_DATA_TYPE_RE = re.compile(DATA_TYPE_PATTERN)


def validate_org_id(org_id: str) -> str:
    """Return ``org_id`` unchanged if valid; raise ``ValueError`` saying what is allowed."""
    if not isinstance(org_id, str) or not _ORG_ID_RE.fullmatch(org_id):
        raise ValueError(
            "organization id must be 2-63 ASCII letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return org_id


def validate_data_type(data_type: str) -> str:
    """Return ``data_type`` unchanged if valid; raise ``ValueError`` otherwise."""
    if not isinstance(data_type, str) or not _DATA_TYPE_RE.fullmatch(data_type):
        raise ValueError(
            "data type must be 1-63 ASCII letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return data_type


def org_alias_name(org_id: str) -> str:
    """The KMS alias of an organization's key: informational, orgkms never encrypts by alias."""
    return f"alias/org-{org_id}-encryption"


def org_prefix(org_id: str) -> str:
    """The S3 key prefix under which an organization's objects live."""
    return f"orgs/{org_id}/"
