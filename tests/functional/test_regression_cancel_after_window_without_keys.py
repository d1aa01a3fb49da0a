"""An erasure that destroyed no key could be cancelled at any time, years later.

What was wrong: ``orgkms erase ORG --cancel`` decided "too late" only from the deletion dates of
the keys it had to restore. An organization on the platform's shared key (erased with
``--force``, its objects listed as residue) has no key of its own, so nothing was checked and
the cancel made the organization READY again long after its window: the library served its data
again (any copy under the shared key, a backup or export, became readable through orgkms), and
the receipt's statement no longer held. README: "After the window it is refused."

Severity: medium (an erased organization resurrected after its announced point of no return).

Fix: the ``erased`` audit entry records the window; cancel refuses once the erasure is older
than it, whatever keys there are.
"""

import time
from typing import Any

import pytest

from orgkms.errors import ErasureRefused
from tests.functional.test_erasure import service


def test_cancel_after_the_window_is_refused_for_an_org_without_keys_of_its_own(
    platform: Any, create_org: Any
) -> None:
    org = create_org(keyMode="shared")
    service(platform).erase(org, window_days=7, force=True)
    eight_days_later = time.time() + 8 * 86400

    with pytest.raises(ErasureRefused, match="too late to cancel"):
        service(platform, clock=lambda: eight_days_later).cancel(org)

    assert platform.registry.get(org).status == "ERASED"


def test_within_the_window_it_can_still_be_cancelled(platform: Any, create_org: Any) -> None:
    org = create_org(keyMode="shared")
    service(platform).erase(org, window_days=7, force=True)

    service(platform, clock=lambda: time.time() + 6 * 86400).cancel(org)

    assert platform.registry.get(org).status == "READY"
