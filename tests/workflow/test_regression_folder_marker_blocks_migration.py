"""A 0-byte "folder" object under the org's prefix makes every migration of the org fail.

Fixed: ``_rekey_object`` answers "not an orgkms object and not SSE-KMS: left as is" for an object
that is neither an Encryption SDK message nor SSE-KMS, but ``reencrypt_page`` counts every
non-"done"/"skipped" outcome as *failed*, and ``validate_page`` refuses the switch whenever
``failed`` > 0. ``validate_page`` itself finds nothing wrong with such an object (it references
no key). The S3 console's "Create folder" makes exactly such an object (``orgs/<org>/reports/``,
0 bytes, SSE-S3 from the bucket default), so one click blocks the org's re-key forever: every
re-run fails the same way, and the log says the object was "left as is".

Fix: report objects that reference no KMS key as a separate outcome (e.g. ``checkpoint.ignored``
listed in the result) without failing validation, or at least skip 0-byte keys ending in "/".
"""

from typing import Any

from tests.workflow.conftest import migrate


def test_an_empty_folder_marker_does_not_block_the_migration(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org(keyMode="shared")
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    s3.put_object(Bucket=bucket, Key=f"orgs/{org}/reports/", Body=b"")

    execution = migrate(workflow, org)

    assert execution["status"] == "SUCCEEDED", platform.checkpoints.get(org).reason
