"""Customer-managed keys (BYOK): accept a customer's key safely, check it, and say what is wrong.

A BYOK request names a key in the customer's own AWS account. Before anything changes:

1. the reference must be a full key ARN or alias ARN, in this platform's partition, in the
   organization's home region and in an account other than the platform's. A bare key id or
   alias name is refused before any AWS call: it would resolve in the platform's own account,
   where a look-alike alias would put the customer's data under a key the customer does not hold;
2. DescribeKey must show an enabled symmetric encryption key (not pending import or deletion);
   an alias ARN is resolved to the key ARN, which is what the registry stores;
3. the key must not already serve another organization;
4. a GenerateDataKey + Decrypt round trip with the organization's context must succeed, which
   proves the customer's key policy lets orgkms use the key for this organization.

Then the re-key workflow moves the organization's data onto the key (``purpose: byok``); at its
switch the organization becomes customer-managed and ``byok-accepted`` is published. Any refusal
leaves the organization on its current key and publishes ``byok-rejected`` with the reason and
the fix (``orgkms byok policy ORG`` prints the statements the customer must add).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from orgkms.audit import record_quietly
from orgkms.errors import REVOCATION_CODES, OrgKmsError, OrgNotFound, OrgNotReady
from orgkms.models import ByokResult, MigrationRequest
from orgkms.observability import SERVICE
from orgkms.policy import DATA_TYPE_CONTEXT_KEY, ORG_CONTEXT_KEY, build_customer_key_statements
from orgkms.registry import OrgRecord, OrgRegistry

logger = Logger(service=SERVICE, child=True)

_KEY_REFERENCE = re.compile(
    r"^arn:(?P<partition>aws(-[a-z]+)*):kms:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"(?P<kind>key|alias)/(?P<name>[A-Za-z0-9/_-]{1,256})$"
)
POLICY_FIX = "add the statements printed by 'orgkms byok policy {org}' to your key's policy"
PREFLIGHT_DATA_TYPE = "orgkms-preflight"


class ByokRejected(OrgKmsError):
    """A customer key orgkms will not use, with the reason and what the customer can do."""

    def __init__(self, reason: str, fix: str, transient: bool = False) -> None:
        super().__init__(f"{reason}; fix: {fix}" if fix else reason)
        self.reason = reason
        self.fix = fix
        # Throttling, an internal KMS error or an unreachable endpoint: says nothing about the
        # key, so it is never recorded as a revocation.
        self.transient = transient


@dataclass(frozen=True)
class KeyReference:
    """A customer key named by ARN, split into its parts."""

    arn: str
    partition: str
    region: str
    account: str
    is_alias: bool


def parse_key_reference(value: Any, partition: str, platform_account: str) -> KeyReference:
    """Accept a full key ARN or alias ARN of another account in ``partition``; refuse the rest."""
    full_arn = "a full key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or alias ARN of your account"
    if not isinstance(value, str) or not value.strip():
        raise ByokRejected("keyArn is empty", f"send {full_arn}")
    if not value.startswith("arn:"):
        raise ByokRejected(
            f"{value[:80]!r} is a bare key id or alias name, which would resolve in the "
            "platform's account, not yours",
            f"send {full_arn}",
        )
    match = _KEY_REFERENCE.fullmatch(value)
    if match is None:
        raise ByokRejected(f"{value[:160]!r} is not a KMS key ARN or alias ARN", f"send {full_arn}")
    if match["partition"] != partition:
        raise ByokRejected(
            f"the key is in partition {match['partition']!r}; this platform runs in {partition!r}",
            f"use a key in the {partition} partition",
        )
    if match["account"] == platform_account:
        raise ByokRejected(
            "the key is in the platform's own account, so it is not a key you control",
            "create the key in your own AWS account and send its ARN",
        )
    if match["kind"] == "alias" and match["name"].startswith("aws/"):
        raise ByokRejected(
            "an AWS managed key cannot be shared with another account",
            "create a customer managed key and send its ARN",
        )
    return KeyReference(
        value, match["partition"], match["region"], match["account"], match["kind"] == "alias"
    )


class CustomerKeyService:
    """BYOK requests, key checks (``orgkms byok check``) and the policy customers must add."""

    def __init__(
        self,
        *,
        registry: OrgRegistry,
        kms_for_region: Callable[[str], Any],
        partition: str,
        account_id: str,
        data_access_role_arn: str,
        key_admin_role_arn: str,
        migration_role_arn: str,
        data_bucket: str,
        bucket_region: str,
        start_migration: Callable[[MigrationRequest], str] | None = None,
        publisher: Any | None = None,
        health: Callable[[str, str, bool, str], bool] | None = None,
        audit: Any = None,
    ) -> None:
        self._audit = audit
        self._registry = registry
        self._kms_for_region = kms_for_region
        self._partition = partition
        self._account_id = account_id
        self._roles = (data_access_role_arn, key_admin_role_arn, migration_role_arn)
        self._bucket = data_bucket
        self._bucket_region = bucket_region
        self._start_migration = start_migration
        self._publisher = publisher
        self._health = health

    # ------------------------------------------------------------------ BYOK requests

    def request(self, org_id: str, key_reference: str) -> str:
        """Check the customer's key and start moving the org onto it; returns the execution.

        Raises :class:`ByokRejected` (already published and recorded) when the key is refused;
        nothing about the organization changes then.
        """
        record = self._registry.get(org_id)
        if record is None:
            raise OrgNotFound(f"organization {org_id!r} is not registered")
        if not record.ready:
            raise OrgNotReady(f"organization {org_id!r} has no usable key yet ({record.status})")
        try:
            key_arn = self.accept_key(record, key_reference)
            if record.encrypt_key_arn == key_arn and record.decrypt_key_arns == (key_arn,):
                self._settle(org_id, key_arn, "ACCEPTED", "already on this key")
                return ""
            execution = self._start(record, key_arn)
        except ByokRejected as rejected:
            self._settle(org_id, str(key_reference)[:2048], "REJECTED", rejected.reason, rejected)
            raise
        self._registry.set_attributes(
            org_id, {"byokStatus": "MIGRATING", "byokKeyArn": key_arn, "byokReason": ""}
        )
        logger.info(
            "BYOK key accepted; moving data onto it",
            extra={"org_id": org_id, "key_arn": key_arn, "execution": execution},
        )
        return execution

    def accept_key(self, record: OrgRecord, key_reference: str) -> str:
        """Every check of the module docstring; returns the key ARN to store."""
        org_id = record.org_id
        reference = parse_key_reference(key_reference, self._partition, self._account_id)
        if reference.region != record.region:
            raise ByokRejected(
                f"the key is in {reference.region}, but organization {org_id!r} keeps its data "
                f"in {record.region}",
                f"create the key in {record.region}",
            )
        metadata = self._describe(org_id, reference)
        key_arn = str(metadata["Arn"])
        if key_arn.split(":")[4] != reference.account:
            raise ByokRejected("the alias points at a key in another account", "")
        _require_usable_metadata(metadata)
        holder = self._registry.guard_key(key_arn, org_id)
        if holder != org_id:
            raise ByokRejected(
                "the key already serves another organization on this platform",
                "give each organization a key of its own",
            )
        try:
            self._round_trip(org_id, key_arn)
        except ByokRejected:
            self._registry.release_key_guard(key_arn, org_id)
            raise
        return key_arn

    # ------------------------------------------------------------------ checks

    def check(self, org_id: str) -> tuple[bool, str]:
        """Can the organization's key be used right now? Records and reports the answer."""
        record = self._registry.get(org_id)
        if record is None:
            raise OrgNotFound(f"organization {org_id!r} is not registered")
        key_arn = record.encrypt_key_arn
        try:
            metadata = self._describe(org_id, _reference_of(key_arn))
            _require_usable_metadata(metadata)
            self._round_trip(org_id, key_arn)
        except ByokRejected as problem:
            if self._health and not problem.transient:
                self._health(org_id, key_arn, False, problem.reason)
            return False, str(problem)
        if self._health:
            self._health(org_id, key_arn, True, "orgkms byok check succeeded")
        return True, f"{key_arn} is enabled and usable for {org_id!r}"

    def policy_statements(self, org_id: str) -> list[dict[str, Any]]:
        """The key-policy statements a customer adds so orgkms can use its key for ``org_id``."""
        data_role, admin_role, migration_role = self._roles
        return build_customer_key_statements(
            partition=self._partition,
            org_id=org_id,
            data_access_role_arn=data_role,
            key_admin_role_arn=admin_role,
            migration_role_arn=migration_role,
            data_bucket=self._bucket,
            bucket_region=self._bucket_region,
        )

    # ------------------------------------------------------------------ internals

    def _describe(self, org_id: str, reference: KeyReference) -> dict[str, Any]:
        kms = self._kms_for_region(reference.region)
        try:
            return dict(kms.describe_key(KeyId=reference.arn)["KeyMetadata"])
        except ClientError as err:
            code = _code(err)
            if code == "NotFoundException":
                raise ByokRejected(
                    f"{reference.arn} was not found, or the platform may not describe it",
                    POLICY_FIX.format(org=org_id) + " and check the ARN",
                ) from None
            if code == "AccessDeniedException":
                raise ByokRejected(
                    f"your key policy does not let the platform describe {reference.arn}",
                    POLICY_FIX.format(org=org_id),
                ) from None
            raise ByokRejected(f"DescribeKey failed ({code})", "retry later", True) from None
        except BotoCoreError as err:
            raise ByokRejected(
                f"KMS unreachable ({type(err).__name__})", "retry later", True
            ) from None

    def _round_trip(self, org_id: str, key_arn: str) -> None:
        kms = self._kms_for_region(key_arn.split(":")[3])
        context = {ORG_CONTEXT_KEY: org_id, DATA_TYPE_CONTEXT_KEY: PREFLIGHT_DATA_TYPE}
        try:
            blob = kms.generate_data_key(
                KeyId=key_arn, KeySpec="AES_256", EncryptionContext=context
            )["CiphertextBlob"]
            kms.decrypt(CiphertextBlob=blob, KeyId=key_arn, EncryptionContext=context)
        except ClientError as err:
            code = _code(err)
            reasons = {
                "AccessDeniedException": "your key policy does not let the platform use the key "
                f"with organization {org_id!r}'s encryption context",
                "DisabledException": "the key is disabled",
                "KMSInvalidStateException": "the key is not in a usable state",
            }
            if code not in REVOCATION_CODES:
                raise ByokRejected(
                    f"a test encryption failed ({code})", "retry later", True
                ) from None
            fix = POLICY_FIX.format(org=org_id) if code == "AccessDeniedException" else ""
            raise ByokRejected(
                f"{reasons.get(code, 'a test encryption failed')} ({code})",
                fix or "enable the key and send the request again",
            ) from None
        except BotoCoreError as err:
            raise ByokRejected(
                f"KMS unreachable ({type(err).__name__})", "retry later", True
            ) from None

    def _start(self, record: OrgRecord, key_arn: str) -> str:
        org_id = record.org_id
        if self._start_migration is None:
            raise ByokRejected("this deployment has no re-key workflow", "")
        from orgkms.checkpoint import MigrationRefused

        request = MigrationRequest(
            organizationId=org_id, targetKeyArn=key_arn, purpose="byok", reason="BYOK"
        )
        try:
            return self._start_migration(request)
        except MigrationRefused as err:
            # The running migration may be this org's earlier move onto the same key (a repeated
            # request): its reservation stays.
            if key_arn not in (
                record.byok_key_arn,
                record.encrypt_key_arn,
                *record.decrypt_key_arns,
            ):
                self._registry.release_key_guard(key_arn, org_id)
            raise ByokRejected(str(err), "send byok-requested again once it has finished") from None

    def _settle(
        self,
        org_id: str,
        key_arn: str,
        status: str,
        reason: str,
        rejected: ByokRejected | None = None,
    ) -> None:
        if rejected is not None:
            logger.warning("BYOK key rejected", extra={"org_id": org_id, "reason": reason})
        settle_byok(
            self._registry,
            self._publisher,
            self._audit,
            ByokResult(
                organizationId=org_id,
                keyArn=key_arn,
                reason=reason,
                fix=rejected.fix if rejected else "",
            ),
            accepted=status == "ACCEPTED",
        )


def settle_byok(
    registry: OrgRegistry, publisher: Any, audit: Any, result: ByokResult, accepted: bool
) -> None:
    """Record a BYOK outcome in the registry (what ``orgkms status`` shows) and the audit trail,
    and publish ``byok-accepted`` or ``byok-rejected``."""
    outcome = "byok-accepted" if accepted else "byok-rejected"
    registry.set_attributes(
        result.organization_id,
        {"byokStatus": "ACCEPTED" if accepted else "REJECTED", "byokReason": result.reason},
    )
    record_quietly(
        audit,
        result.organization_id,
        outcome,
        keyArn=result.key_arn,
        reason=result.reason[:500],
        **({"execution": result.execution} if result.execution else {}),
    )
    if publisher is not None:
        publisher.publish(outcome, result)


def _require_usable_metadata(metadata: dict[str, Any]) -> None:
    arn = metadata.get("Arn", "the key")
    state = metadata.get("KeyState")
    problems = {
        "PendingImport": ("its key material has not been imported", "import the key material"),
        "PendingDeletion": ("it is scheduled for deletion", "cancel the deletion and enable it"),
        "PendingReplicaDeletion": ("it is scheduled for deletion", "use another key"),
        "Disabled": ("it is disabled", "enable it"),
        "Unavailable": ("its custom key store is disconnected", "reconnect the key store"),
    }
    if state != "Enabled":
        reason, fix = problems.get(str(state), (f"it is {state}", "use an enabled key"))
        raise ByokRejected(f"{arn} cannot be used: {reason}", fix)
    if metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec")) != "SYMMETRIC_DEFAULT":
        raise ByokRejected(
            f"{arn} is a {metadata.get('KeySpec')} key; envelope encryption needs "
            "SYMMETRIC_DEFAULT",
            "create a symmetric encryption key",
        )
    if metadata.get("KeyUsage") != "ENCRYPT_DECRYPT":
        raise ByokRejected(
            f"{arn} is for {metadata.get('KeyUsage')}; it must be for ENCRYPT_DECRYPT",
            "create a symmetric encryption key",
        )


def _reference_of(key_arn: str) -> KeyReference:
    parts = key_arn.split(":")
    return KeyReference(key_arn, parts[1], parts[3], parts[4], False)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))
