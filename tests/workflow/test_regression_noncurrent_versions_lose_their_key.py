"""With ``noncurrentVersions: report`` the old key is retired while noncurrent versions need it.

Fixed: ``validate_page`` counts noncurrent versions still under an old key
(``noncurrent_under_old_keys``) but ``switch``/``_retire`` never look at that count: the org-owned
old key is disabled and scheduled for deletion anyway. README promises "an old key is retired
only if nothing references it". After the deletion window every earlier version of every object
(the history a versioned bucket is kept for, e.g. to undo a bad overwrite) is permanently
unreadable; in this test the previous content of ``report.txt`` is lost.

Fix: in ``switch``, keep (do not disable/schedule) a source key while
``noncurrent_under_old_keys > 0`` in ``report`` mode (record "kept: N noncurrent versions"), or
re-encrypt noncurrent versions too, or refuse ``report`` with a retiring switch.
"""

import io
from typing import Any

from tests.workflow.conftest import migrate


def test_an_old_key_still_used_by_noncurrent_versions_is_not_retired(
    workflow: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    platform.store.put(org, "document", "report.txt", io.BytesIO(b"v1: the figures we need"))
    platform.store.put(org, "document", "report.txt", io.BytesIO(b"v2: a bad overwrite"))
    old_key = platform.registry.get(org).encrypt_key_arn
    kms = workflow.client("kms")
    target = kms.create_key()["KeyMetadata"]["Arn"]

    execution = migrate(
        workflow, org, targetKeyArn=target, deletionWindowDays=7, noncurrentVersions="report"
    )

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    checkpoint = platform.checkpoints.get(org)
    assert checkpoint.noncurrent_under_old_keys > 0  # the workflow knows they reference it ...
    state = kms.describe_key(KeyId=old_key)["KeyMetadata"]["KeyState"]
    assert state == "Enabled", (
        f"old key {state} while {checkpoint.noncurrent_under_old_keys} noncurrent versions "
        "are encrypted under it"
    )
