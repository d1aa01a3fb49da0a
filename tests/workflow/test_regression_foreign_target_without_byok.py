"""Fixed (medium): a migration-requested with a targetKeyArn in another account moved an org onto
that key without any of BYOK's checks: no reservation (two orgs could share one customer key), no
customer-managed label (rotation would then try to rotate the customer's key). A key of another
account is a customer's key and comes in through byok-requested only; the workflow refuses it
before touching any data.
"""

from typing import Any

from tests.functional.test_customer_keys import customer_key
from tests.workflow.conftest import migrate


def test_a_foreign_target_key_is_refused_unless_it_comes_through_byok(
    workflow: Any, platform: Any, create_org: Any, new_org: Any
) -> None:
    org = create_org()
    failed = workflow.listen(new_org("failed"), ["migration-failed"])
    before = platform.lookup(org)
    key = customer_key(workflow, org)

    execution = migrate(workflow, org, targetKeyArn=key)

    assert execution["status"] == "FAILED"
    (answer,) = failed()
    assert "another account" in answer["reason"]
    after = platform.lookup(org)
    assert (after.encrypt_key_arn, after.key_mode) == (before.encrypt_key_arn, before.key_mode)
