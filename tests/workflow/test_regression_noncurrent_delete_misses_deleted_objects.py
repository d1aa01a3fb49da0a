"""``noncurrentVersions: delete`` leaves the versions of deleted objects under the retired key.

Fixed: noncurrent versions are only visited from ``validate_page``'s listing of *current* objects
(``list_objects_v2``). An object whose latest version is a delete marker is not listed, so its
versions under the old key are neither deleted (``delete``) nor counted (``report``), and the old
key is then scheduled for deletion. The org's recoverable deleted objects become permanently
unreadable, and the operator was told nothing referenced the key any more.

Fix: walk ``list_object_versions`` over the whole ``orgs/<org>/`` prefix (paged, with
``KeyMarker``/``VersionIdMarker``) for the noncurrent pass instead of per current key, and count
or delete versions of keys whose latest is a delete marker too.
"""

import io
from typing import Any

from tests.workflow.conftest import migrate


def test_delete_mode_leaves_no_version_under_the_key_it_retires(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    platform.store.put(org, "document", "kept.txt", io.BytesIO(b"kept"))
    platform.store.put(org, "document", "trashed.txt", io.BytesIO(b"recoverable until now"))
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    s3.delete_object(Bucket=bucket, Key=f"orgs/{org}/trashed.txt")  # a delete marker on top
    old_key = platform.registry.get(org).encrypt_key_arn
    target = workflow.client("kms").create_key()["KeyMetadata"]["Arn"]

    execution = migrate(
        workflow, org, targetKeyArn=target, deletionWindowDays=7, noncurrentVersions="delete"
    )

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    retired = platform.checkpoints.get(org).retired
    assert retired[0]["action"] == "scheduled-deletion"
    under_old = []
    for version in s3.list_object_versions(Bucket=bucket, Prefix=f"orgs/{org}/")["Versions"]:
        head = s3.head_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        if head["Metadata"].get("orgkms-key-arn") == old_key:
            under_old.append(version["Key"])
    assert under_old == [], f"versions under the key scheduled for deletion: {under_old}"
