"""Fixed (low): an org-created for an erased organization's id was retried until it reached the
dead-letter queue with "key creation already in progress", a misleading reason, and three
deliveries' worth of noise. An erased id must never get a new key (its receipt and audit trail stay
anchored to it); the event is now refused once, with the reason, and the message is done.
"""

from typing import Any

from orgkms.models import control_plane_entry
from tests.functional.test_erasure import org_with_data, service


def test_org_created_for_an_erased_id_is_refused_once_with_the_reason(
    stack: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org, _ = org_with_data(platform, create_org)
    service(platform).erase(org)
    rejected = stack.listen(new_org("rejected"), ["event-rejected", "org-key-ready"])

    stack.put_events([control_plane_entry("org-created", {"organizationId": org})])
    stack.deliver()

    (answer,) = rejected()
    assert answer["detail-type"] == "event-rejected"
    assert "was erased" in answer["reason"]
    assert platform.lookup(org).status == "ERASED"
    assert not [m for m in stack.dead_letters() if org in m["Body"]]
