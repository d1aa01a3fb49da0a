"""An object deleted while the migration rewrites it comes back to life.

Fixed: ``MigrationService._kept_order`` checks that the rewrite sits right on top of the version it
read by looking only at ``ListObjectVersions``' ``Versions`` list, which never contains delete
markers. If a writer deletes the object between the migration's read and its upload
(version list: NEW, delete-marker, READ), the check still sees NEW directly above READ, keeps the
rewrite, and the deleted object (e.g. a GDPR erasure) is current and readable again.

Fix: compare against the merged, time-ordered list of ``Versions`` *and* ``DeleteMarkers`` (or
use the object's version just below the new one including markers), and treat a delete marker
between READ and NEW as a racing writer (delete the rewrite).
"""

import io
from typing import Any

import pytest

from tests.workflow.conftest import migrate


def test_an_object_deleted_during_its_rewrite_stays_deleted(
    workflow: Any, platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgkms.migration import MigrationService

    org = create_org(keyMode="shared")
    platform.store.put(org, "document", "erase-me.txt", io.BytesIO(b"personal data"))
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    key = f"orgs/{org}/erase-me.txt"
    original = MigrationService._upload
    deleted = {"done": False}

    def user_deletes_first(self: Any, s3_key: str, reader: Any, *args: Any) -> Any:
        if s3_key == key and not deleted["done"]:
            deleted["done"] = True
            s3.delete_object(Bucket=bucket, Key=key)  # the user erases the object meanwhile
        return original(self, s3_key, reader, *args)

    monkeypatch.setattr(MigrationService, "_upload", user_deletes_first)

    execution = migrate(workflow, org)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert deleted["done"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    assert listed == [], "the object the user deleted during the migration is current again"
