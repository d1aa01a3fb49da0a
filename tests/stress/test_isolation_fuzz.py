"""Randomized attempts to read one organization's data as another's, through every path.

A seeded loop and a hypothesis property draw attempts from one table of attacks: the wrong org
(dedicated and shared-key neighbours), the wrong data type, ids differing only in case, Unicode
look-alike ids, a message whose encryption context bytes were edited to name the reader, a
message forged under another org's key with this org's context, truncated, bit-flipped and
concatenated messages. Caches are warm (every org encrypts and decrypts all along) and the
first org's alias is repointed at the second org's key for the whole run. An attempt succeeds
if any plaintext comes back; the goal is none.
"""

import io
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgkms.envelope import OrgEnvelope
from orgkms.errors import DecryptionRefused, InvalidEvent, OrgNotFound
from orgkms.lifecycle import parse_control_plane_message
from tests.conftest import org_created
from tests.stress.conftest import CANARY, SIZES
from tests.unit.test_events import body

SEED = 20261207
TYPES = ("invoice", "payroll")  # equal length: a context edit keeps the header's layout
MESSAGES_PER_ORG = 6
EDIT_SHARE = 0.04  # context edits need a KMS round trip each: a few percent of the attempts


@dataclass
class Sealed:
    owner: str
    data_type: str
    blob: bytes
    plaintext: bytes


@dataclass
class World:
    envelope: OrgEnvelope
    orgs: list[str]
    pairs: dict[str, str]  # org -> the org whose id has the same length (for context edits)
    messages: list[Sealed]
    forged: list[Sealed]  # under another org's key, with the owner's context
    lookalikes: list[str]
    key_arns: dict[str, str]


def lookalikes_of(org: str) -> list[str]:
    """Ids a person would read as ``org``: homoglyphs, full width, invisible and stray chars."""
    swaps = {
        "a": "\u0430",  # Cyrillic
        "e": "\u0435",
        "c": "\u0441",
        "o": "\u043e",
        "s": "\u0455",
        "i": "\u0131",  # dotless i
        "k": "\u212a",  # Kelvin sign
        "C": "\u216d",  # Roman numeral one hundred
    }
    found = [org.replace(ch, alt, 1) for ch, alt in swaps.items() if ch in org]
    return [
        *found,
        "\uff43" + org[1:],  # full-width first letter
        org[:2] + "\u200b" + org[2:],  # zero-width space
        org + " ",
        org + "\n",
        org.replace("-", "\u2010", 1),  # Unicode hyphen
    ]


@pytest.fixture(scope="module")
def world(stack: Any, platform: Any) -> World:
    run = uuid.uuid4().hex[:6]
    dedicated = [f"iso-a-{run}", f"iso-b-{run}", f"Case-{run}", f"case-{run}"]
    shared = [f"shr-a-{run}", f"shr-b-{run}"]
    stack.put_events([org_created({"organizationId": org}) for org in dedicated])
    stack.put_events([org_created({"organizationId": o, "keyMode": "shared"}) for o in shared])
    stack.deliver()
    orgs = dedicated + shared
    key_arns = {org: platform.registry.get(org).encrypt_key_arn for org in orgs}
    assert key_arns[shared[0]] == key_arns[shared[1]]  # neighbours on one key
    envelope = platform.envelope
    rng = random.Random(SEED)
    messages = []
    for org in orgs:
        for i in range(MESSAGES_PER_ORG):
            data_type = TYPES[i % 2]
            plaintext = CANARY + rng.randbytes(rng.randint(0, 3000))
            messages.append(
                Sealed(org, data_type, envelope.encrypt(org, data_type, plaintext), plaintext)
            )
    # A holder of any *other* key (a neighbour on the shared key holds the same one: writing
    # with it under this org's context is what writing as this org means).
    forged = [
        forge(platform, next(arn for arn in key_arns.values() if arn != key_arns[org]), org)
        for org in orgs
    ]
    # Org a's alias now names org b's key: the registry holds ARNs, so nothing may change.
    stack.client("kms").update_alias(
        AliasName=f"alias/org-iso-a-{run}-encryption", TargetKeyId=key_arns[f"iso-b-{run}"]
    )
    pairs = {
        f"iso-a-{run}": f"iso-b-{run}",
        f"iso-b-{run}": f"iso-a-{run}",
        f"Case-{run}": f"case-{run}",
        f"case-{run}": f"Case-{run}",
        shared[0]: shared[1],
        shared[1]: shared[0],
    }
    lookalikes = [alike for org in orgs for alike in lookalikes_of(org)]
    return World(envelope, orgs, pairs, messages, forged, lookalikes, key_arns)


def forge(platform: Any, key_arn: str, victim: str) -> Sealed:
    """A message made with another org's key and the victim's context (what a holder of that
    key could craft): it must not open as the victim's."""
    foreign = OrgEnvelope(
        lambda org: platform.lookup(org).__class__(
            org_id=org,
            status="READY",
            key_mode="dedicated",
            region="us-east-1",
            encrypt_key_arn=key_arn,
            decrypt_key_arns=(key_arn,),
        )
    )
    plaintext = CANARY + b" forged"
    return Sealed(victim, TYPES[0], foreign.encrypt(victim, TYPES[0], plaintext), plaintext)


# ------------------------------------------------------------------ the attacks


def edit_context(blob: bytes, owner: str, reader: str, rng: random.Random) -> bytes:
    """The header's context bytes rewritten to name ``reader`` (and maybe the other type)."""
    header_end = len(blob) // 2 if len(blob) > 400 else len(blob)
    head, tail = blob[:header_end], blob[header_end:]
    head = head.replace(owner.encode(), reader.encode(), 1)
    if rng.random() < 0.5:
        for a, b in (TYPES, TYPES[::-1]):
            if a.encode() in head:
                head = head.replace(a.encode(), b.encode(), 1)
                break
    return head + tail


Attempt = tuple[str, bytes, str | None]  # reader org, ciphertext, data type asked for


def attack_wrong_org(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    return rng.choice([o for o in w.orgs if o != m.owner]), m.blob, rng.choice([None, m.data_type])


def attack_wrong_type(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    return m.owner, m.blob, next(t for t in TYPES if t != m.data_type)


def attack_case_variant(w: World, rng: random.Random) -> Attempt:
    m = rng.choice([m for m in w.messages if m.owner.lower().startswith("case-")])
    return w.pairs[m.owner], m.blob, None


def attack_lookalike_id(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    return rng.choice(w.lookalikes), m.blob, None


def attack_truncated(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    return m.owner, m.blob[: rng.randrange(len(m.blob))], m.data_type


def attack_bit_flip(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    blob = bytearray(m.blob)
    blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
    return m.owner, bytes(blob), None


def attack_concatenated(w: World, rng: random.Random) -> Attempt:
    m, other = rng.choice(w.messages), rng.choice(w.messages)
    joined = m.blob + other.blob if rng.random() < 0.7 else other.blob + m.blob
    return m.owner, joined, None


def attack_foreign_key(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.forged)
    return m.owner, m.blob, None


def attack_edited_context(w: World, rng: random.Random) -> Attempt:
    m = rng.choice(w.messages)
    reader = w.pairs[m.owner]
    return reader, edit_context(m.blob, m.owner, reader, rng), None


# name -> attack; a new path is one more line here.
ATTACKS: dict[str, Callable[[World, random.Random], Attempt]] = {
    "wrong-org": attack_wrong_org,
    "wrong-data-type": attack_wrong_type,
    "case-variant-id": attack_case_variant,
    "lookalike-id": attack_lookalike_id,
    "truncated": attack_truncated,
    "bit-flipped": attack_bit_flip,
    "concatenated": attack_concatenated,
    "foreign-key-forgery": attack_foreign_key,
    "edited-context": attack_edited_context,
}


def attempt(w: World, reader: str, blob: bytes, data_type: str | None) -> str:
    """``success`` (plaintext came back), ``refused`` or ``rejected-id``; anything else raises."""
    try:
        w.envelope.decrypt(reader, blob, data_type)
    except DecryptionRefused:
        return "refused"
    except ValueError:
        return "rejected-id"  # not a valid organization id: never looked up, never decrypted
    except OrgNotFound:
        return "unknown-org"

    return "success"


def test_seeded_attempts_never_read_another_orgs_data(
    world: World, stack: Any, figures: Any
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[str] = Counter()
    per_attack: Counter[str] = Counter()
    cheap = [name for name in ATTACKS if name != "edited-context"]
    owner_reads = 0
    for i in range(SIZES.isolation_attempts):
        name = "edited-context" if rng.random() < EDIT_SHARE else rng.choice(cheap)
        reader, blob, data_type = ATTACKS[name](world, rng)
        result = attempt(world, reader, blob, data_type)
        outcomes[result] += 1
        per_attack[name] += 1
        assert result != "success", f"{name}: {reader!r} read a message that is not its own"
        if i % 200 == 0:  # the owners still read their own (so refusals are not blanket)
            m = rng.choice(world.messages)
            assert world.envelope.decrypt(m.owner, m.blob, m.data_type) == m.plaintext
            owner_reads += 1

    figures.counts.update(
        attempts=sum(outcomes.values()),
        successes=outcomes["success"],
        refused=outcomes["refused"],
        rejected_ids=outcomes["rejected-id"],
        unknown_orgs=outcomes["unknown-org"],
        owner_reads_ok=owner_reads,
        **{f"tried_{k.replace('-', '_')}": v for k, v in sorted(per_attack.items())},
    )
    assert set(per_attack) == set(ATTACKS)


def test_with_the_alias_repointed_encryption_stays_under_the_registered_key(
    world: World, figures: Any
) -> None:
    org = world.orgs[0]
    arns = set()
    for i in range(50):
        blob = world.envelope.encrypt(org, TYPES[i % 2], CANARY)
        header, _ = deserialize_header(io.BytesIO(blob), 3)
        arns |= {edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys}
        assert attempt(world, world.pairs[org], blob, None) == "refused"
    figures.counts.update(encrypts_after_alias_repointed=50, key_arns_used=len(arns))
    assert arns == {world.key_arns[org]}


def test_lookalike_ids_are_refused_as_events_and_never_name_an_org(
    world: World, figures: Any
) -> None:
    refused = 0
    for alike in world.lookalikes:
        with pytest.raises(InvalidEvent):
            parse_control_plane_message(body({"organizationId": alike}))
        with pytest.raises(ValueError):
            world.envelope.encrypt(alike, TYPES[0], CANARY)
        refused += 1
    figures.counts.update(lookalike_ids=len(world.lookalikes), refused_as_event_and_in_api=refused)


@settings(
    max_examples=SIZES.isolation_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(
    pick=st.integers(min_value=0),
    cut=st.integers(min_value=0),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=4),
    reader_shift=st.integers(min_value=0, max_value=5),
    splice=st.binary(max_size=64),
)
def test_property_any_mutation_or_reader_is_refused(
    world: World,
    pick: int,
    cut: int,
    edits: list[tuple[int, int]],
    reader_shift: int,
    splice: bytes,
) -> None:
    m = world.messages[pick % len(world.messages)]
    blob = bytearray(m.blob)
    for position, mask in edits:
        blob[position % len(blob)] ^= mask
    blob = blob[: len(blob) - cut % 64] + bytearray(splice)
    reader = world.orgs[(world.orgs.index(m.owner) + reader_shift) % len(world.orgs)]
    if bytes(blob) == m.blob and reader == m.owner:
        return  # untouched and read by its owner: that one must succeed, checked above
    assert attempt(world, reader, bytes(blob), None) != "success"
