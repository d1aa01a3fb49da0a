"""Provisioning an organization's key: exactly one key and one alias, whatever the deliveries.

The steps, each safe to repeat:

1. the registry already says READY: nothing to do;
2. claim the creation with a conditional write carrying a lease (a second delivery at once is told
   to retry; a crashed attempt's claim can be taken over once its lease has expired);
3. find the key an earlier attempt made (the registry's pending key, the alias, or, after a crash
   between CreateKey and the registry write, a key tagged with this organization), else create it;
4. record it as pending, point the alias at it, turn on automatic rotation;
5. resolve the ARN with DescribeKey and mark the organization READY.
"""

import json
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from orgkms.audit import record_quietly
from orgkms.errors import KeyProvisioningError, OrgErased
from orgkms.ids import org_alias_name
from orgkms.models import DEFAULT_ROTATION_DAYS, OrgCreated
from orgkms.observability import SERVICE
from orgkms.policy import build_org_key_policy
from orgkms.registry import OrgRecord, OrgRegistry

logger = Logger(service=SERVICE, child=True)

ORG_TAG = "orgkms:organization-id"
STACK_TAG = "orgkms:stack"
CLAIM_TAG = "orgkms:claim"
# Longer than the handler's timeout, so a live attempt is never taken over.
CLAIM_LEASE_SECONDS = 180


class CreationInProgress(KeyProvisioningError):
    """Another delivery holds a live claim on this organization; retry later."""


class OrgKeyService:
    """Creates organization keys. KMS clients come from ``kms_for_region`` (one per region)."""

    def __init__(
        self,
        *,
        registry: OrgRegistry,
        kms_for_region: Callable[[str], Any],
        default_region: str,
        partition: str,
        account_id: str,
        data_access_role_arn: str,
        key_admin_role_arn: str,
        shared_key_arn: str,
        stack_name: str,
        migration_role_arn: str = "",
        data_bucket: str = "",
        audit: Any = None,
    ) -> None:
        self._registry = registry
        self._kms_for_region = kms_for_region
        self._default_region = default_region
        self._partition = partition
        self._account_id = account_id
        self._data_role = data_access_role_arn
        self._admin_role = key_admin_role_arn
        self._shared_key_arn = shared_key_arn
        self._stack_name = stack_name
        self._migration_role = migration_role_arn
        self._data_bucket = data_bucket
        self._audit = audit

    @property
    def registry(self) -> OrgRegistry:
        return self._registry

    @property
    def audit(self) -> Any:
        return self._audit

    def in_another_account(self, key_arn: str) -> bool:
        """Does ``key_arn`` name a key of another AWS account (a customer's key)?"""
        parts = key_arn.split(":")
        return len(parts) > 4 and parts[4] != self._account_id

    def refuse_if_erased(self, org_id: str, record: OrgRecord | None = None) -> OrgRecord | None:
        """An erased organization's id never gets a new key: its receipt and audit trail stay
        anchored to it, and its destroyed data must stay unreadable. Returns the record read."""
        record = record or self._registry.get(org_id)
        if record is not None and record.status in ("ERASING", "ERASED"):
            raise OrgErased(f"organization {org_id!r} was erased; its id is not given a new key")
        return record

    def ensure_org_key(self, request: OrgCreated) -> OrgRecord:
        """Return the organization's READY record, creating its key if needed."""
        org_id = request.organization_id
        region = request.region or self._default_region

        existing = self._registry.get(org_id)
        self.refuse_if_erased(org_id, existing)
        if existing and existing.ready:
            if existing.key_mode != request.key_mode:
                logger.warning(
                    "org-created repeats with another key mode; keeping the registered one",
                    extra={"org_id": org_id, "registered_mode": existing.key_mode},
                )
            return existing

        if request.key_mode == "shared":
            return self._register_shared(org_id, region, request.owner_principal_arn)

        token = uuid.uuid4().hex
        if not self._registry.claim_creation(
            org_id, token, CLAIM_LEASE_SECONDS, "dedicated", region, request.owner_principal_arn
        ):
            raise CreationInProgress(f"organization {org_id!r}: key creation already in progress")
        try:
            return self._create_claimed(
                org_id,
                region,
                token,
                request.owner_principal_arn,
                existing,
                request.rotation_period_days,
            )
        except Exception:
            # A handled failure frees the claim for the retry; the pending key stays recorded and
            # is adopted then. A hard crash leaves the claim to expire after its lease instead.
            self._registry.release_claim(org_id, token)
            raise

    def create_migration_target(
        self,
        org_id: str,
        region: str,
        owner: str | None,
        claim: str,
        earlier_claims: tuple[str, ...] = (),
    ) -> str:
        """A key of the org's own for an org registered elsewhere (the shared key): the re-key
        workflow's target. Safe to repeat with the same ``claim`` (the execution), and after an
        execution in ``earlier_claims`` died before recording its key: a key tagged with any of
        them is adopted."""
        kms = self._kms_for_region(region)
        alias_name = org_alias_name(org_id)
        claims = frozenset({claim, *earlier_claims})
        key_arn = self._scan_for_tagged_key(kms, org_id, claims) or self._create_key(
            kms, org_id, owner, claim
        )
        self._ensure_alias(kms, org_id, alias_name, key_arn)
        self._call(kms.enable_key_rotation, org_id, key_arn, KeyId=key_arn)
        return key_arn

    def _register_shared(self, org_id: str, region: str, owner: str | None) -> OrgRecord:
        if self._registry.register_shared(org_id, self._shared_key_arn, region, owner):
            record_quietly(
                self._audit, org_id, "registered-shared", keyArn=self._shared_key_arn, region=region
            )
        record = self._registry.get(org_id)
        if record is None or not record.ready:
            raise CreationInProgress(f"organization {org_id!r}: a dedicated key is being created")
        logger.info("organization registered on the shared key", extra={"org_id": org_id})
        return record

    def _create_claimed(
        self,
        org_id: str,
        region: str,
        token: str,
        owner: str | None,
        previous: OrgRecord | None,
        period_days: int | None = None,
    ) -> OrgRecord:
        kms = self._kms_for_region(region)
        alias_name = org_alias_name(org_id)

        key_arn = self._find_earlier_key(kms, org_id, alias_name, previous)
        if key_arn is None:
            key_arn = self._create_key(kms, org_id, owner, token)
        self._registry.record_pending_key(org_id, token, key_arn)

        self._ensure_alias(kms, org_id, alias_name, key_arn)
        self._call(
            kms.enable_key_rotation,
            org_id,
            key_arn,
            KeyId=key_arn,
            RotationPeriodInDays=period_days or DEFAULT_ROTATION_DAYS,
        )
        metadata = self._call(kms.describe_key, org_id, key_arn, KeyId=key_arn)["KeyMetadata"]
        key_arn = metadata["Arn"]

        self._registry.mark_ready(org_id, token, key_arn, alias_name)
        record_quietly(self._audit, org_id, "key-created", keyArn=key_arn, region=region)
        logger.info("organization key ready", extra={"org_id": org_id, "key_arn": key_arn})
        record = self._registry.get(org_id)
        assert record is not None and record.ready
        return record

    def _create_key(self, kms: Any, org_id: str, owner: str | None, claim: str) -> str:
        """CreateKey, tagged with the org, this stack and the claim, sent exactly once.

        The policy leaves PutKeyPolicy to the account (no role of orgkms can rewrite it), so the
        lockout safety check, which wants the caller able to put a policy, is bypassed: the
        account-root statement keeps the key manageable. botocore must not retry CreateKey: a
        lost answer would make a second key. A failure goes back to SQS; the retry finds the
        key by its claim tag.
        """
        kms.meta.events.register_first(
            "needs-retry.kms.CreateKey", _never_retry, unique_id="orgkms-create-key-once"
        )
        policy = build_org_key_policy(
            partition=self._partition,
            account_id=self._account_id,
            org_id=org_id,
            data_access_role_arn=self._data_role,
            key_admin_role_arn=self._admin_role,
            owner_principal_arn=owner,
            migration_role_arn=self._migration_role or None,
            data_bucket=self._data_bucket or None,
            bucket_region=self._default_region,
        )
        response = self._call(
            kms.create_key,
            org_id,
            "",
            Policy=json.dumps(policy),
            Description=f"orgkms key of organization {org_id}",
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            BypassPolicyLockoutSafetyCheck=True,
            Tags=[
                {"TagKey": ORG_TAG, "TagValue": org_id},
                {"TagKey": STACK_TAG, "TagValue": self._stack_name},
                {"TagKey": CLAIM_TAG, "TagValue": claim},
            ],
        )
        key_arn = str(response["KeyMetadata"]["Arn"])
        logger.info("organization key created", extra={"org_id": org_id, "key_arn": key_arn})
        return key_arn

    def _find_earlier_key(
        self, kms: Any, org_id: str, alias_name: str, previous: OrgRecord | None
    ) -> str | None:
        """The key a crashed attempt left behind, if any."""
        if previous and previous.pending_key_arn:
            return previous.pending_key_arn
        if previous is None:
            return None
        claims = frozenset({*previous.claim_tokens, previous.claim_token} - {""})
        if not claims:
            return None
        target = self._alias_target(kms, alias_name)
        if target and self.owns(target, org_id, kms, claims):
            return target
        return self._scan_for_tagged_key(kms, org_id, claims)

    def _scan_for_tagged_key(
        self, kms: Any, org_id: str, claim: str | frozenset[str]
    ) -> str | None:
        # NOTE: reached only when a claim is taken over and the crashed attempt recorded no key
        # (it died between CreateKey and its next registry write), and once when a migration
        # gives a shared-mode org its key. Cost grows with the number of keys in the region;
        # it buys exactly one key per organization in those rare cases.
        found: list[tuple[Any, str]] = []
        for page in kms.get_paginator("list_keys").paginate():
            for entry in page.get("Keys", []):
                if not self.owns(entry["KeyArn"], org_id, kms, claim):
                    continue
                metadata = kms.describe_key(KeyId=entry["KeyArn"])["KeyMetadata"]
                if metadata.get("KeyState") == "Enabled":
                    found.append((metadata.get("CreationDate"), metadata["Arn"]))
        if not found:
            return None
        found.sort()
        if len(found) > 1:
            logger.warning(
                "several unregistered keys tagged for one organization; adopting the oldest",
                extra={"org_id": org_id, "key_arns": [arn for _, arn in found]},
            )
        logger.info("adopting key left by an interrupted attempt", extra={"org_id": org_id})
        return found[0][1]

    def owns(
        self, key_id: str, org_id: str, kms: Any = None, claim: str | frozenset[str] | None = None
    ) -> bool:
        """Did this stack make ``key_id`` for ``org_id`` (under ``claim``, or one of them)?

        A key tagged for the org alone proves nothing: anyone allowed to create and tag keys
        in the account could have planted it, with a policy of their own.
        """
        kms = kms or self._kms_for_region(key_id.split(":")[3])
        try:
            tags = kms.list_resource_tags(KeyId=key_id).get("Tags", [])
        except ClientError:
            return False
        found = {t["TagKey"]: t["TagValue"] for t in tags}
        if (found.get(ORG_TAG), found.get(STACK_TAG)) != (org_id, self._stack_name):
            return False
        claims = {claim} if isinstance(claim, str) else claim
        return claims is None or found.get(CLAIM_TAG) in claims

    def _alias_target(self, kms: Any, alias_name: str) -> str | None:
        try:
            return str(kms.describe_key(KeyId=alias_name)["KeyMetadata"]["Arn"])
        except ClientError as err:
            if _code(err) == "NotFoundException":
                return None
            raise

    def _ensure_alias(self, kms: Any, org_id: str, alias_name: str, key_arn: str) -> None:
        try:
            kms.create_alias(AliasName=alias_name, TargetKeyId=key_arn)
            return
        except ClientError as err:
            if _code(err) != "AlreadyExistsException":
                raise KeyProvisioningError(
                    f"organization {org_id!r}: CreateAlias {alias_name} failed ({_code(err)})"
                ) from err
        current = self._alias_target(kms, alias_name)
        if current != key_arn:
            # The alias is informational (orgkms never encrypts by alias), but it must name the
            # organization's key: repoint it rather than leave a misleading name behind.
            logger.warning(
                "alias pointed at another key; repointing",
                extra={"org_id": org_id, "key_arn": key_arn, "previous_target": current},
            )
            self._call(kms.update_alias, org_id, key_arn, AliasName=alias_name, TargetKeyId=key_arn)

    def _call(self, method: Callable[..., Any], org_id: str, key_arn: str, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as err:
            name = getattr(method, "__name__", "KMS call")
            raise KeyProvisioningError(
                f"organization {org_id!r}: {name} failed on {key_arn or 'a new key'} ({_code(err)})"
            ) from err


def _never_retry(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    """needs-retry hook: a failed CreateKey is reported, never sent again by botocore."""
    failed = caught_exception is not None or (
        response is not None and response[0] is not None and response[0].status_code >= 400
    )
    if failed:
        raise KeyProvisioningError("CreateKey failed; not retried here, so no second key is made")


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))
