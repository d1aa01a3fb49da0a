"""Fixed (low): an erased organization stayed on the rotation index, so the daily scanner queued a
rotate-due for it every period, which failed as not ready and ended in the DLQ. Erasure now takes
the org off the index; cancelling the erasure puts it back, due at once.
"""

import time
from typing import Any

from orgkms.registry import ROTATION_SHARDS
from tests.functional.test_erasure import org_with_data, service


def due(platform: Any) -> set[str]:
    now = int(time.time()) + 400 * 86400  # far ahead: every scheduled org is due
    return {
        o
        for shard in range(ROTATION_SHARDS)
        for o in platform.registry.due_for_rotation(shard, now)
    }


def test_erasure_takes_the_org_off_the_rotation_index_and_cancel_restores_it(
    platform: Any, create_org: Any
) -> None:
    org, _ = org_with_data(platform, create_org)
    assert org in due(platform)

    service(platform).erase(org)
    assert org not in due(platform)

    service(platform).cancel(org)
    assert org in due(platform)
    assert platform.lookup(org).next_rotation_at <= time.time()
