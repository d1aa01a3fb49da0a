"""Where moto is laxer than AWS, AWS's documented behaviour, in one place.

Each patch restores one behaviour orgkms relies on; tests that depend on it say so. Listed:

1. KMS Encrypt, Decrypt, GenerateDataKey and ReEncrypt refuse a key that is Disabled
   (``DisabledException``) or PendingDeletion / PendingImport (``KMSInvalidStateException``);
   moto lets them succeed.
2. ScheduleKeyDeletion accepts a waiting period of 7 to 30 days only (``ValidationException``);
   moto silently ignores other values.
3. A key ARN naming another account or region is not found (``NotFoundException``); moto
   resolves it to the local key with the same id. Cross-account access is not emulated at all.
4. Lambda's SQS poller honours ``ReportBatchItemFailures``: only the failed messages of a batch
   return to the queue (see :mod:`orgkms.local.runtime`); moto's delivers one message per
   invocation and ignores the response.

5. DynamoDB evaluates a conditional write and applies it atomically; moto's check and write can
   interleave between threads, so two conditional claims of one item could both succeed.
6. EventBridge delivers the whole event to an SQS target, ``account`` included; moto's default
   target template leaves ``account`` out.

7. CreateKey without ``KeyUsage`` makes an ``ENCRYPT_DECRYPT`` key; moto leaves the usage empty.
8. DisableKey and EnableKey on a key pending deletion fail (``KMSInvalidStateException``); moto's
   DisableKey silently cancels the deletion.
9. DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion accept a key ARN; moto's
   look the ARN up as a raw key id and fail.

12. A key ARN or alias ARN of another account reaches that account's key only if its key policy
   (or a grant) lets the calling account use it: an ``Allow`` statement whose principal is in the
   calling account, whose action matches, and whose conditions hold (``StringEquals``/``StringLike``
   on ``kms:EncryptionContext:*``, ``kms:CallerAccount``, ``ForAllValues:StringEquals`` on
   ``kms:EncryptionContextKeys``; a statement with any other condition key,
   such as ``kms:ViaService``, does not apply), with no matching ``Deny``. Otherwise
   ``AccessDeniedException``. moto ignores the account in an ARN altogether. Which principal of the
   calling account is calling is not known to the emulator, so roles are not told apart (the
   statements orgkms asks customers to add are checked by unit tests instead).
13. ``RotateKeyOnDemand`` is refused with ``LimitExceededException`` once a key has had ten
   on-demand rotations, and for keys that are not enabled symmetric AWS_KMS keys.
14. Decrypt of a corrupted ciphertext blob fails with ``InvalidCiphertextException``; moto's
    blob names its key in clear, and a corrupted name made it answer ``AccessDeniedException``
    (which orgkms rightly reads as a key it may not use, not as a tampered message).

Emulator defects worked around (not AWS behaviour, just so the template deploys as it would):

10. moto's CloudFormation creates an ``AWS::KMS::Key`` with CloudFormation's ``Key``/``Value`` tags,
   which its tagger cannot read, and keeps ``KeyPolicy`` as an object rather than JSON text.

11. A bucket's ``VersioningConfiguration`` and ``PublicAccessBlockConfiguration`` are not applied
   by moto's CloudFormation; :class:`orgkms.local.stack.EmbeddedStack` applies them after
   creating the stack. It also creates each state machine again through the Step Functions API
   with its ``DefinitionSubstitutions`` applied, since moto's CloudFormation ignores them and its
   interpreter cannot see the state machines CloudFormation made.

Not restored (tests cover these with botocore's Stubber instead): key policies of the calling
account's own keys and IAM are not evaluated; ``Origin=EXTERNAL`` keys are usable before import;
CloudTrail LookupEvents.
"""

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.events.utils import EventTemplateParser
from moto.kms.exceptions import (
    AccessDeniedException,
    InvalidCiphertextException,
    NotFoundException,
    ValidationException,
)
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse
from moto.kms.utils import _deserialize_ciphertext_blob

_installed = False


class DisabledException(JsonRESTError):
    def __init__(self, key_arn: str) -> None:
        super().__init__("DisabledException", f"{key_arn} is disabled.")


class KMSInvalidStateException(JsonRESTError):
    def __init__(self, key_arn: str, state: str) -> None:
        super().__init__("KMSInvalidStateException", f"{key_arn} is pending {state.lower()}.")


def _require_usable(backend: KmsBackend, key_id: str) -> None:
    key = backend.keys[backend.any_id_to_key_id(key_id)]
    if key.key_state == "Disabled":
        raise DisabledException(key.arn)
    if key.key_state in {"PendingDeletion", "PendingImport"}:
        raise KMSInvalidStateException(key.arn, key.key_state.removeprefix("Pending"))


def _require_local_arn(backend: KmsBackend, key_id: str | None) -> None:
    if not key_id or not key_id.startswith("arn:"):
        return
    parts = key_id.split(":")
    if len(parts) < 6 or parts[3] != backend.region_name or parts[4] != backend.account_id:
        raise NotFoundException(f"Key '{key_id}' does not exist")


def _checked(original: Callable[..., Any], key_arg: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        key_id = kwargs.get(key_arg)
        _require_local_arn(self, key_id)
        if key_id is not None:
            _require_usable(self, key_id)
        return original(self, *args, **kwargs)

    return wrapper


def _require_known_blob_key(backend: KmsBackend, blob: bytes) -> None:
    try:
        key_id = _deserialize_ciphertext_blob(blob).key_id
    except Exception:
        return  # moto refuses it itself, as InvalidCiphertextException
    if key_id not in backend.keys:
        raise InvalidCiphertextException()


def _checked_decrypt(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        _require_local_arn(self, kwargs.get("key_id"))
        _require_known_blob_key(self, kwargs.get("ciphertext_blob", args[0] if args else b""))
        plaintext, arn = original(self, *args, **kwargs)
        _require_usable(self, arn)
        return plaintext, arn

    return wrapper


def _checked_deletion(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, key_id: str, pending_window_in_days: int) -> Any:
        if not 7 <= int(pending_window_in_days) <= 30:
            raise ValidationException(
                f"PendingWindowInDays {pending_window_in_days} is not between 7 and 30"
            )
        return original(self, key_id, pending_window_in_days)

    return wrapper


def _accepts_arn(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        _require_local_arn(self, key_id)
        resolved = self.any_id_to_key_id(key_id)
        if resolved not in self.keys:
            raise NotFoundException(f"Key '{key_id}' does not exist")
        return original(self, resolved, *args, **kwargs)

    return wrapper


def _cfn_key_compatible(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        properties["Tags"] = [
            {"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties.get("Tags", [])
        ]
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        return original(
            resource_name,
            {**cloudformation_json, "Properties": properties},
            account_id,
            region_name,
            **kwargs,
        )

    return classmethod(create)  # type: ignore[return-value]


_DYNAMODB_WRITE_LOCK = threading.RLock()


def _atomic(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITE_LOCK:
            return original(*args, **kwargs)

    return wrapper


def _not_pending_deletion(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        key = self.keys.get(self.any_id_to_key_id(key_id))
        if key is not None and key.key_state == "PendingDeletion":
            raise KMSInvalidStateException(key.arn, "Deletion")
        return original(self, key_id, *args, **kwargs)

    return wrapper


def _default_key_usage(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, *args: Any, **kwargs: Any) -> Any:
        if "key_usage" in kwargs and not kwargs["key_usage"]:
            kwargs["key_usage"] = "ENCRYPT_DECRYPT"
        elif len(args) >= 2 and not args[1]:
            args = (args[0], "ENCRYPT_DECRYPT", *args[2:])
        return original(self, *args, **kwargs)

    return wrapper


# On-demand rotations AWS allows per key over its lifetime.
MAX_ON_DEMAND_ROTATIONS = 10


class LimitExceededException(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("LimitExceededException", message)


def _limited_rotation(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        key = self.keys[self.any_id_to_key_id(key_id)]
        _require_usable(self, key.id)
        done = sum(1 for r in key.rotations if r.get("RotationType") == "ON_DEMAND")
        if done >= MAX_ON_DEMAND_ROTATIONS:
            raise LimitExceededException(
                f"{key.arn} has reached the limit of {MAX_ON_DEMAND_ROTATIONS} on-demand rotations"
            )
        return original(self, key.id, *args, **kwargs)

    return wrapper


def _routed_backend(self: KmsResponse) -> KmsBackend:
    """The backend of the account a key ARN names, once its key policy lets the caller in."""
    own = kms_backends[self.current_account][self.region]
    try:
        key_id = self._get_param("KeyId") or self._get_param("DestinationKeyId")
    except ValueError:
        return own
    if not isinstance(key_id, str) or not key_id.startswith("arn:"):
        return own
    parts = key_id.split(":")
    if len(parts) < 6 or parts[4] == self.current_account or parts[3] != self.region:
        return own
    if parts[4] not in kms_backends or self.region not in kms_backends[parts[4]]:
        raise NotFoundException(f"Key '{key_id}' does not exist")
    foreign: KmsBackend = kms_backends[parts[4]][self.region]
    try:
        key = foreign.keys[foreign.any_id_to_key_id(key_id)]
    except (KeyError, TypeError, AttributeError):
        raise NotFoundException(f"Key '{key_id}' does not exist") from None
    action = f"kms:{self._get_action()}"
    context = self._get_param("EncryptionContext") or {}
    if not _cross_account_allowed(key, self.current_account, action, context):
        raise AccessDeniedException(
            f"User in account {self.current_account} is not authorized to perform: {action} on "
            f"resource: {key.arn} because no resource-based policy allows the {action} action"
        )
    return foreign


def _cross_account_allowed(key: Key, account: str, action: str, context: dict[str, str]) -> bool:
    try:
        statements = json.loads(key.policy).get("Statement", [])
    except (TypeError, ValueError):
        return False
    if isinstance(statements, dict):
        statements = [statements]
    facts: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in context.items()}
    facts["kms:CallerAccount"] = account
    facts["kms:EncryptionContextKeys"] = list(context)
    matching = [
        s.get("Effect")
        for s in statements
        if _names_account(s.get("Principal"), account)
        and _action_matches(s.get("Action"), action)
        and _conditions_hold(s.get("Condition") or {}, facts)
    ]
    if "Deny" in matching:
        return False
    if "Allow" in matching:
        return True
    return any(
        _names_account(g.grantee_principal, account)
        and ("*" in g.operations or action.removeprefix("kms:") in g.operations)
        for g in key.grants.values()
    )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_account(principal: Any, account: str) -> bool:
    if isinstance(principal, dict):
        principal = principal.get("AWS", [])
    return any(
        isinstance(p, str) and (p == account or p.split(":")[4:5] == [account])
        for p in _listed(principal)
    )


def _action_matches(actions: Any, action: str) -> bool:
    import fnmatch

    return any(
        isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower())
        for a in _listed(actions)
    )


def _conditions_hold(conditions: dict[str, Any], facts: dict[str, Any]) -> bool:
    import fnmatch

    for operator, tests in conditions.items():
        if not isinstance(tests, dict):
            return False
        if operator == "ForAllValues:StringEquals":
            if set(tests) != {"kms:EncryptionContextKeys"}:
                return False
            allowed = _listed(tests["kms:EncryptionContextKeys"])
            if not all(k in allowed for k in facts["kms:EncryptionContextKeys"]):
                return False
            continue
        if operator not in {"StringEquals", "StringLike"}:
            return False
        for name, wanted in tests.items():
            if name not in facts and not name.startswith("kms:EncryptionContext:"):
                return False
            value = facts.get(name)
            if value is None:
                return False
            if operator == "StringEquals" and value not in _listed(wanted):
                return False
            if operator == "StringLike" and not any(
                fnmatch.fnmatchcase(value, str(w)) for w in _listed(wanted)
            ):
                return False
    return True


def install() -> None:
    """Patch moto's KMS backend once per process."""
    global _installed
    if _installed:
        return
    KmsBackend.encrypt = _checked(KmsBackend.encrypt, "key_id")  # type: ignore[method-assign]
    KmsBackend.generate_data_key = _checked(  # type: ignore[method-assign]
        KmsBackend.generate_data_key, "key_id"
    )
    KmsBackend.re_encrypt = _checked(  # type: ignore[method-assign]
        KmsBackend.re_encrypt, "destination_key_id"
    )
    KmsBackend.decrypt = _checked_decrypt(KmsBackend.decrypt)  # type: ignore[method-assign]
    KmsBackend.schedule_key_deletion = _accepts_arn(  # type: ignore[method-assign]
        _checked_deletion(KmsBackend.schedule_key_deletion)
    )
    for name in ("disable_key", "enable_key", "cancel_key_deletion"):
        setattr(KmsBackend, name, _accepts_arn(getattr(KmsBackend, name)))
    for name in ("disable_key", "enable_key"):
        setattr(KmsBackend, name, _not_pending_deletion(getattr(KmsBackend, name)))
    Key.create_from_cloudformation_json = _cfn_key_compatible(  # type: ignore[method-assign]
        Key.create_from_cloudformation_json
    )
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
        '"account": "<account>", "time": <time>, "region": "<region>", '
        '"resources": <resources>, "detail": <detail>}'
    )
    KmsBackend.create_key = _default_key_usage(KmsBackend.create_key)  # type: ignore[method-assign]
    KmsBackend.rotate_key_on_demand = _limited_rotation(  # type: ignore[method-assign]
        KmsBackend.rotate_key_on_demand
    )
    KmsResponse.kms_backend = property(_routed_backend)  # type: ignore[method-assign,assignment]
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
    _installed = True
