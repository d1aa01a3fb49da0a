"""Envelope encryption per organization, with the AWS Encryption SDK.

What keeps organizations apart:

* every message carries the context ``{OrganizationId, DataType}`` and nothing unique per message,
  so KMS (and the org key's policy condition) binds each data key to one organization;
* encrypting uses a strict provider listing only the organization's encrypt key ARN; decrypting
  uses a strict provider listing only its decrypt key ARNs, both read from the registry: never a
  discovery provider, never an alias;
* after the header is read, and before any plaintext is released, the message's context must name
  the expected organization (and data type, when given): the SDK does not check this, and two
  organizations on the platform's shared key could otherwise read each other's data;
* data keys are cached per organization, in a cache of its own bounded by age, messages and
  bytes; organizations never share a cache, and :meth:`OrgEnvelope.flush` drops one's.

Every refusal raises :class:`~orgkms.errors.DecryptionRefused`, which names only the requested
organization.
"""

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, ContentType
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager
from botocore.exceptions import BotoCoreError

from orgkms.config import CachePolicy
from orgkms.errors import (
    REVOCATION_CODES,
    DecryptionRefused,
    KeyUnavailable,
    OrgErased,
    OrgNotReady,
)
from orgkms.ids import validate_data_type, validate_org_id
from orgkms.policy import DATA_TYPE_CONTEXT_KEY, ORG_CONTEXT_KEY
from orgkms.registry import OrgRecord

# The SDK logs each refused message with a traceback at ERROR. Give its logger a handler of its
# own so that, where the application configured no logging (a CLI), nothing reaches the terminal;
# where it did (Lambda), records still propagate to the application's handlers.
logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())

# Committing, non-signing. See README "Algorithm suite" for why not the signing default.
ALGORITHM = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
FRAME_LENGTH = 64 * 1024
# Read in frame-sized pieces: the SDK copies its buffer per frame, so larger reads cost more.
CHUNK = FRAME_LENGTH
# An org's messages carry one data key copy per key in its decrypt list (at most a few during a
# re-key); more is refused before any KMS call, so a crafted message cannot fan out KMS requests.
MAX_ENCRYPTED_DATA_KEYS = 3
MAX_CACHED_ORGS = 1_000
# KMS error codes that mean "this ciphertext is not what it claims": a refusal. Any other KMS
# error (disabled, deleted, denied, throttled, internal, unreachable) means the key cannot be used
# right now: KeyUnavailable, which callers may retry, never mistake for tampering.
REFUSAL_CODES = {"InvalidCiphertextException", "IncorrectKeyException"}
# Told when an org key is found unavailable or working again: (org id, key ARN, available, why).
HealthListener = Callable[[str, str, bool, str], Any]
# Messages orgkms accepts are framed, with frames no larger than this: memory stays bounded.
MAX_FRAME_LENGTH = 1024 * 1024


class Sink(Protocol):
    """Where plaintext or ciphertext is written: a binary file, a socket, a hashing wrapper."""

    def write(self, data: bytes, /) -> Any: ...


@dataclass
class OrgCounters:
    """What the library did for one organization in this process (for audit and reports)."""

    encrypts: int = 0
    decrypts: int = 0
    refusals: int = 0
    kms_calls: int = 0

    @property
    def operations(self) -> int:
        return self.encrypts + self.decrypts + self.refusals

    @property
    def cache_hits(self) -> int:
        """Operations served without a KMS call (so they never reach CloudTrail)."""
        return max(0, self.operations - self.kms_calls)


@dataclass
class _OrgMaterials:
    record: OrgRecord
    encrypt_cmm: CachingCryptoMaterialsManager
    decrypt_cmm: CachingCryptoMaterialsManager
    cache: Any
    loaded_at: float
    counters: OrgCounters = field(default_factory=OrgCounters)
    restored_reported: bool = False


class OrgEnvelope:
    """Encrypt and decrypt organizations' data. One instance per process; thread-safe.

    ``lookup`` returns an organization's registry record (raising ``OrgNotFound``); it is called
    again once the cache's max age has passed, so key changes reach warm processes within it.
    """

    def __init__(
        self,
        lookup: Callable[[str], OrgRecord],
        cache_policy: CachePolicy | None = None,
        botocore_session: botocore.session.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        health: HealthListener | None = None,
    ) -> None:
        self._lookup = lookup
        self._health = health
        self._policy = cache_policy or CachePolicy()
        # A botocore session of its own: the KMS call counter and the last-error record then see
        # this envelope's calls only, never another client's.
        self._session = botocore_session or botocore.session.Session()
        self._session.register("after-call.kms", self._count_kms_call)
        self._count_lock = threading.Lock()
        self._clock = clock
        self._orgs: OrderedDict[str, _OrgMaterials] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
        )
        self.kms_calls = 0

    # ----------------------------------------------------------------- public API

    def encrypt(self, org_id: str, data_type: str, plaintext: bytes) -> bytes:
        """Encrypt ``plaintext`` for ``org_id``; returns an Encryption SDK message."""
        materials = self._materials(org_id)
        with self._kms_errors(org_id, materials.record.encrypt_key_arn):
            ciphertext, _ = self._sdk.encrypt(
                source=plaintext,
                materials_manager=materials.encrypt_cmm,
                encryption_context=_context(org_id, data_type),
                algorithm=ALGORITHM,
                frame_length=FRAME_LENGTH,
            )
        self._succeeded(org_id, materials)
        materials.counters.encrypts += 1
        return bytes(ciphertext)

    def decrypt(self, org_id: str, ciphertext: bytes, data_type: str | None = None) -> bytes:
        """Decrypt one message of ``org_id``; refuses anything else with ``DecryptionRefused``."""
        out = io.BytesIO()
        self.decrypt_stream(org_id, io.BytesIO(ciphertext), out, data_type)
        return out.getvalue()

    def encrypt_stream(
        self,
        org_id: str,
        data_type: str,
        source: IO[bytes],
        sink: Sink,
        length: int | None = None,
    ) -> str:
        """Encrypt ``source`` into ``sink`` in frames, memory bounded; returns the key ARN used.

        Give ``length`` when known: the data key can then come from the cache.
        """
        reader, key_arn = self.open_encrypting_reader(org_id, data_type, source, length)
        with reader:
            while chunk := reader.read(CHUNK):
                sink.write(chunk)
        return key_arn

    def open_encrypting_reader(
        self, org_id: str, data_type: str, source: IO[bytes], length: int | None = None
    ) -> tuple[Any, str]:
        """A file-like that reads ``source`` encrypted (for uploads that pull, like S3's
        multipart), and the ARN of the key it encrypts under."""
        materials = self._materials(org_id)
        with self._kms_errors(org_id, materials.record.encrypt_key_arn):
            reader = self._sdk.stream(
                mode="e",
                source=source,
                materials_manager=materials.encrypt_cmm,
                encryption_context=_context(org_id, data_type),
                algorithm=ALGORITHM,
                frame_length=FRAME_LENGTH,
                source_length=length,
            )
            reader.header  # noqa: B018 - obtains the data key now, so KMS errors surface here
        self._succeeded(org_id, materials)
        materials.counters.encrypts += 1
        return reader, materials.record.encrypt_key_arn

    def decrypt_stream(
        self, org_id: str, source: IO[bytes], sink: Sink, data_type: str | None = None
    ) -> dict[str, str]:
        """Decrypt ``source`` into ``sink``; returns the message's encryption context.

        The context is checked before the first byte of plaintext is written. A truncated
        message fails at its end, after earlier authenticated frames were written: write to a
        temporary file and keep it only on success when that matters.
        """
        return self._decrypt(org_id, source, sink, data_type)

    def check_header(
        self, org_id: str, source: IO[bytes], data_type: str | None = None
    ) -> dict[str, str]:
        """Decrypt a message's data key and check its context, without reading its body.

        Proves the message's data key opens with this org's decrypt keys (one KMS call per
        distinct data key, cached); the body's frames are not authenticated by this check.
        """
        return self._decrypt(org_id, source, None, data_type)

    def _decrypt(
        self, org_id: str, source: IO[bytes], sink: Sink | None, data_type: str | None
    ) -> dict[str, str]:
        validate_org_id(org_id)
        if data_type is not None:
            validate_data_type(data_type)
        materials = self._materials(org_id)
        self._local.last_kms_error = None
        try:
            source = _checked_header(org_id, data_type, source)
            decryptor = self._sdk.stream(
                mode="d", source=source, materials_manager=materials.decrypt_cmm
            )
            context = dict(decryptor.header.encryption_context)
            _check_context(org_id, data_type, context)
            if sink is None:
                return context
            with decryptor:
                while chunk := decryptor.read(CHUNK):
                    sink.write(chunk)
            if source.read(1):
                raise _ContextMismatch  # bytes after the message: not one intact message
        except (OrgNotReady, KeyUnavailable, OSError):
            raise
        except BotoCoreError as err:
            raise KeyUnavailable(f"organization {org_id!r}: KMS unreachable ({err})") from None
        except Exception as err:
            code = getattr(self._local, "last_kms_error", None)
            if code and code not in REFUSAL_CODES and not isinstance(err, _ContextMismatch):
                self._unavailable(org_id, materials, code)
                raise KeyUnavailable(_unavailable_text(org_id, "decrypt with", code)) from None
            materials.counters.refusals += 1
            raise DecryptionRefused(org_id) from None
        record = materials.record
        # A data key that opened may be under an older key of the decrypt list: only an org whose
        # one decrypt key is its encrypt key proves that key works by decrypting.
        if set(record.decrypt_key_arns) <= {record.encrypt_key_arn}:
            self._succeeded(org_id, materials)
        materials.counters.decrypts += 1
        return context

    def flush(self, org_id: str) -> None:
        """Forget ``org_id``'s cached data keys and registry record in this process."""
        with self._lock:
            materials = self._orgs.pop(org_id, None)
        if materials is not None:
            materials.cache.clear()

    def counters(self, org_id: str) -> OrgCounters:
        with self._lock:
            materials = self._orgs.get(org_id)
        return materials.counters if materials else OrgCounters()

    def record(self, org_id: str) -> OrgRecord:
        """The registry record this process currently uses for ``org_id``."""
        return self._materials(org_id).record

    # ----------------------------------------------------------------- internals

    def _materials(self, org_id: str) -> _OrgMaterials:
        validate_org_id(org_id)
        self._local.org_id = org_id  # the KMS calls this thread makes next are this org's
        now = self._clock()
        with self._lock:
            materials = self._orgs.get(org_id)
            if materials and now - materials.loaded_at < self._policy.max_age_seconds:
                self._orgs.move_to_end(org_id)
                return materials
        record = self._lookup(org_id)
        if record.status in ("ERASING", "ERASED"):
            self.flush(org_id)
            raise OrgErased(f"organization {org_id!r} was erased: its data is no longer served")
        if not record.ready or not record.encrypt_key_arn:
            raise OrgNotReady(f"organization {org_id!r} has no usable key yet ({record.status})")
        fresh = self._build(record, now)
        with self._lock:
            stale = self._orgs.pop(org_id, None)
            if stale is not None and stale.record == record:
                # Same keys: keep the warm data-key cache and counters, refresh the deadline.
                stale.loaded_at = now
                fresh = stale
            elif stale is not None:
                stale.cache.clear()
            self._orgs[org_id] = fresh
            while len(self._orgs) > MAX_CACHED_ORGS:
                _, evicted = self._orgs.popitem(last=False)
                evicted.cache.clear()
        return fresh

    def _build(self, record: OrgRecord, now: float) -> _OrgMaterials:
        from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache

        cache = LocalCryptoMaterialsCache(capacity=self._policy.capacity)
        decrypt_arns = list(dict.fromkeys([*record.decrypt_key_arns, record.encrypt_key_arn]))

        def cmm(key_arns: list[str], role: str) -> CachingCryptoMaterialsManager:
            provider = StrictAwsKmsMasterKeyProvider(
                key_ids=key_arns, botocore_session=self._session
            )
            return CachingCryptoMaterialsManager(
                cache=cache,
                master_key_provider=provider,
                max_age=float(self._policy.max_age_seconds),
                max_messages_encrypted=self._policy.max_messages,
                max_bytes_encrypted=self._policy.max_bytes,
                partition_name=f"orgkms/{record.org_id}/{role}",
            )

        return _OrgMaterials(
            record=record,
            encrypt_cmm=cmm([record.encrypt_key_arn], "encrypt"),
            decrypt_cmm=cmm(decrypt_arns, "decrypt"),
            cache=cache,
            loaded_at=now,
        )

    def _unavailable(self, org_id: str, materials: _OrgMaterials, code: str) -> None:
        """The org's key was taken away: drop its cached data keys here at once, and tell."""
        if code not in REVOCATION_CODES:
            return
        self.flush(org_id)
        self._tell(org_id, materials.record.encrypt_key_arn, False, f"KMS answered {code}")

    def _succeeded(self, org_id: str, materials: _OrgMaterials) -> None:
        if materials.record.key_health == "UNAVAILABLE" and not materials.restored_reported:
            materials.restored_reported = True
            self._tell(org_id, materials.record.encrypt_key_arn, True, "KMS accepted the key again")

    def _tell(self, org_id: str, key_arn: str, available: bool, reason: str) -> None:
        if self._health is None:
            return
        try:
            self._health(org_id, key_arn, available, reason)
        except Exception:  # reporting must never change what the caller sees
            logging.getLogger(__name__).warning(
                "key health not recorded for organization %s", org_id, exc_info=False
            )

    def _count_kms_call(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        with self._count_lock:
            self.kms_calls += 1
            materials = self._orgs.get(getattr(self._local, "org_id", ""))
            if materials is not None:
                materials.counters.kms_calls += 1
        error = (parsed or {}).get("Error") or {}
        if error.get("Code"):
            self._local.last_kms_error = error["Code"]

    @contextmanager
    def _kms_errors(self, org_id: str, key_arn: str) -> Iterator[None]:
        """Turn the SDK's errors on the encrypt path into one naming the org, key and cause."""
        self._local.last_kms_error = None
        try:
            yield
        except BotoCoreError as err:
            raise KeyUnavailable(
                _unavailable_text(org_id, "reach KMS for", type(err).__name__)
            ) from err
        except AWSEncryptionSDKClientError as err:
            code = getattr(self._local, "last_kms_error", None) or type(err).__name__
            materials = self._orgs.get(org_id)
            if materials is not None:
                self._unavailable(org_id, materials, code)
            raise KeyUnavailable(
                _unavailable_text(org_id, f"encrypt under {key_arn} with", code)
            ) from err


class _ContextMismatch(Exception):
    pass


class _Prefixed:
    """``prefix`` then the rest of ``source``: the header bytes read once, handed to the SDK."""

    def __init__(self, prefix: bytes, source: IO[bytes]) -> None:
        self._prefix = prefix
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._prefix = self._prefix + self._source.read(), b""
            return data
        data, self._prefix = self._prefix[:size], self._prefix[size:]
        while len(data) < size:
            more = self._source.read(size - len(data))
            if not more:
                break
            data += more
        return data


def _checked_header(org_id: str, data_type: str | None, source: IO[bytes]) -> Any:
    """Parse the header and check its context and framing before any KMS call.

    A message for another org or type is refused without asking KMS (the header is authenticated
    later by the SDK, so this check can only refuse, never accept); an unframed message, or one
    with frames above MAX_FRAME_LENGTH, is refused so that memory stays bounded.
    """
    header, raw = deserialize_header(source, MAX_ENCRYPTED_DATA_KEYS)
    _check_context(org_id, data_type, dict(header.encryption_context))
    if header.content_type != ContentType.FRAMED_DATA or header.frame_length > MAX_FRAME_LENGTH:
        raise _ContextMismatch
    return _Prefixed(raw, source)


def _unavailable_text(org_id: str, doing: str, code: str) -> str:
    if code in REVOCATION_CODES:
        return (
            f"key unavailable: organization {org_id!r} cannot {doing} its key ({code}); "
            "nothing was written in plaintext or under another key - restore the key or its "
            "access, then run 'orgkms byok check'"
        )
    return f"key unavailable: organization {org_id!r} cannot {doing} its key now ({code}); retry"


def _context(org_id: str, data_type: str) -> dict[str, str]:
    return {
        ORG_CONTEXT_KEY: validate_org_id(org_id),
        DATA_TYPE_CONTEXT_KEY: validate_data_type(data_type),
    }


def _check_context(org_id: str, data_type: str | None, context: dict[str, str]) -> None:
    if context.get(ORG_CONTEXT_KEY) != org_id:
        raise _ContextMismatch
    if data_type is not None and context.get(DATA_TYPE_CONTEXT_KEY) != data_type:
        raise _ContextMismatch
    if set(context) != {ORG_CONTEXT_KEY, DATA_TYPE_CONTEXT_KEY}:
        raise _ContextMismatch
