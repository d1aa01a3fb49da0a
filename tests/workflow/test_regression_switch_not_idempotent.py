"""A failure after the switch retired the old key turns a finished migration into FAILED.

Fixed: ``switch`` commits before it can fail. It points the registry at the target alone, schedules
the old key for deletion, saves COMPLETED, and only then publishes ``migration-completed``. If
anything after ``_retire`` fails (here PutEvents refusing the result event; equally a Lambda
timeout after ScheduleKeyDeletion, which the Retry re-runs), the Catch runs ``fail``: the
COMPLETED checkpoint is overwritten with FAILED, ``migration-failed`` is published, and the
PendingDeletion key is put back into the org's decrypt list. In AWS a re-run (or the Retry of
``switch``) then reaches ``_retire`` again and ``DisableKey``/``ScheduleKeyDeletion`` on a
PendingDeletion key raise KMSInvalidStateException, so the org can never be migrated again
without manual repair (moto silently accepts DisableKey on a PendingDeletion key and flips it to
Disabled, so the emulator hides that second half).

Fix: make ``_retire`` idempotent (a key already Disabled/PendingDeletion is already retired),
move the result event out of the committing step (or do not fail the workflow on a publish
error), and have ``fail`` leave a COMPLETED/SWITCHING-after-commit checkpoint and registry alone.
"""

import io
from typing import Any

import pytest

from tests.workflow.conftest import migrate


def test_a_failure_after_retiring_the_old_key_is_not_reported_as_a_failed_migration(
    workflow: Any, platform: Any, create_org: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgkms.bus import PublishError, ResultPublisher

    org = create_org()
    platform.store.put(org, "document", "a.txt", io.BytesIO(b"keep me"))
    old_key = platform.registry.get(org).encrypt_key_arn
    kms = workflow.client("kms")
    target = kms.create_key()["KeyMetadata"]["Arn"]
    original = ResultPublisher.publish

    def bus_refuses_completion(self: Any, detail_type: str, detail: Any) -> None:
        if detail_type == "migration-completed":
            raise PublishError("publishing migration-completed failed: ThrottlingException")
        return original(self, detail_type, detail)

    monkeypatch.setattr(ResultPublisher, "publish", bus_refuses_completion)

    migrate(workflow, org, targetKeyArn=target, deletionWindowDays=7, noncurrentVersions="delete")

    state = kms.describe_key(KeyId=old_key)["KeyMetadata"]["KeyState"]
    checkpoint = platform.checkpoints.get(org)
    record = platform.registry.get(org)
    assert state == "PendingDeletion"  # the switch did retire the old key ...
    # ... so the migration must not be recorded as failed with the retired key back in use.
    assert (checkpoint.status, old_key in record.decrypt_key_arns) == ("COMPLETED", False), (
        checkpoint.status,
        checkpoint.reason,
        record.decrypt_key_arns,
    )
