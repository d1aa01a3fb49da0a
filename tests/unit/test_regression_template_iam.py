"""Found in review: IAM in template.yaml that moto does not evaluate, checked as AWS would."""

from pathlib import Path
from typing import Any

from orgkms.local.template import load_template
from orgkms.policy import ADMIN_ACTIONS

ROOT = Path(__file__).resolve().parents[2]


def _role_statements(logical_id: str) -> list[dict[str, Any]]:
    role = load_template(ROOT / "template.yaml")["Resources"][logical_id]
    statements: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]


def test_key_admin_role_may_tag_the_keys_it_creates() -> None:
    """Fixed (high): every dedicated org key creation fails in real AWS.

    keys.py calls CreateKey with ``Tags=[orgkms:organization-id, orgkms:stack]``. AWS KMS requires
    ``kms:TagResource`` in an IAM policy (not restricted to particular keys) to pass ``Tags`` to
    CreateKey (KMS developer guide, "Controlling access to tags"). KeyAdminRole grants
    kms:CreateKey only, so in AWS every org-created event fails with AccessDeniedException and,
    after MaxReceiveCount deliveries, lands in the DLQ. moto does not evaluate IAM, so every
    functional test passes.

    Fix: add ``kms:TagResource`` on ``"*"`` to KeyAdminRole, conditioned like CreateTaggedOrgKeys
    (``aws:RequestTag/orgkms:stack`` = stack name, ``aws:TagKeys`` limited to the two keys).
    """
    grants = [
        s
        for s in _role_statements("KeyAdminRole")
        if s.get("Effect") == "Allow" and "kms:TagResource" in _actions(s)
    ]
    assert grants, "KeyAdminRole cannot pass Tags to kms:CreateKey"
    assert any(s.get("Resource") == "*" for s in grants)


def test_key_admin_role_cannot_rewrite_key_policies() -> None:
    """Fixed (medium): the "no data" key-admin role can give itself kms:Decrypt on every key.

    README: KeyAdminRole "can neither read data nor delete keys". But it holds kms:PutKeyPolicy,
    both in every org key's policy (ADMIN_ACTIONS) and in its IAM policy on every key tagged
    ``orgkms:stack`` = the stack, which includes the SharedPlatformKey. PutKeyPolicy lets it
    replace a key policy with one granting itself kms:Decrypt (or ScheduleKeyDeletion), so
    whoever controls the org-lifecycle function (which parses control-plane input) can read
    every organization's data, including every org on the shared key.

    Fix: drop kms:PutKeyPolicy from the role and from ADMIN_ACTIONS; call CreateKey with
    ``BypassPolicyLockoutSafetyCheck=True`` (safe: the policy keeps the account-root statement),
    and scope admin statements so they never match the SharedPlatformKey.
    """
    iam = [a for s in _role_statements("KeyAdminRole") for a in _actions(s)]
    assert "kms:PutKeyPolicy" not in iam
    assert "kms:PutKeyPolicy" not in ADMIN_ACTIONS
