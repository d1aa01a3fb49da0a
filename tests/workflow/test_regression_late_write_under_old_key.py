"""A write that began before the dual phase and lands after validation is unreadable after switch.

Fixed: the workflow assumes that after ``cacheDrainSeconds`` nothing new lands under an old key.
That holds for writes that *start* after the drain, not for writes already in flight: a
``store.put`` takes its data key (under the old key) when it starts and its PutObject /
CompleteMultipartUpload lands whenever the upload ends, which for a large object can be minutes
later. If it lands after ``validate_page`` passed its key and before or after ``switch``, the
switch drops the old key from the org's decrypt list (and may schedule it for deletion) with a
current object still under it. Nothing re-checks: the object is silently unreadable
(DecryptionRefused) from then on. Here the in-flight upload completes just before ``switch``.

Fix: in ``switch``, before changing the registry, list objects whose LastModified is after the
dual phase opened (or re-run a cheap metadata-only validation of the whole prefix) and fail/loop
back if any is under an old key; and keep the old keys in the decrypt list for a grace period
(>= the longest upload) before dropping/retiring them.
"""

import io
from typing import Any

import pytest

from orgkms.store import FORMAT_VERSION, META_DATA_TYPE, META_FORMAT, META_KEY_ARN
from tests.workflow.conftest import migrate


def test_an_upload_in_flight_during_the_migration_stays_readable(
    workflow: Any, platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgkms.migration import MigrationService

    org = create_org(keyMode="shared")
    platform.store.put(org, "document", "existing.txt", io.BytesIO(b"existing"))
    s3, bucket = workflow.client("s3"), platform.settings.data_bucket
    body = b"a large upload that started before the migration " * 1000
    # The writer starts its upload now: its data key comes from the org's current (old) key.
    reader, key_arn = platform.envelope.open_encrypting_reader(
        org, "document", io.BytesIO(body), len(body)
    )
    original = MigrationService.switch

    def upload_finishes_now(self: Any, state: dict[str, Any]) -> dict[str, Any]:
        with reader:
            s3.upload_fileobj(
                reader,
                bucket,
                f"orgs/{org}/slow-upload.bin",
                ExtraArgs={
                    "ContentType": "application/vnd.aws-encryption-sdk",
                    "Metadata": {
                        META_KEY_ARN: key_arn,
                        META_FORMAT: FORMAT_VERSION,
                        META_DATA_TYPE: "document",
                    },
                },
            )
        return original(self, state)

    monkeypatch.setattr(MigrationService, "switch", upload_finishes_now)

    execution = migrate(workflow, org)

    platform.envelope.flush(org)
    out = io.BytesIO()
    try:
        platform.store.get(org, "slow-upload.bin", out)
    except Exception as err:  # DecryptionRefused today
        pytest.fail(
            f"migration {execution['status']}; the in-flight upload is unreadable: "
            f"{type(err).__name__}: {err}"
        )
    assert out.getvalue() == body
