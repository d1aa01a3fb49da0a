"""Property: any org, any type, any payload round-trips, and never decrypts as another org."""

import random
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgkms.errors import DecryptionRefused
from orgkms.ids import ORG_ID_PATTERN

payloads = st.binary(min_size=0, max_size=4096)
data_types = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")


@pytest.fixture(scope="module")
def orgs(stack: Any) -> list[str]:
    """Orgs with hypothesis-generated ids: dedicated and shared, some differing only in case."""
    from tests.conftest import org_created

    rng = random.Random(20261204)
    alphabet = string.ascii_letters + string.digits + "-_"
    made = {
        rng.choice(string.ascii_letters) + "".join(rng.choices(alphabet, k=rng.randint(1, 40)))
        for _ in range(6)
    }
    generated = sorted(made | {"Tenant-A", "tenant-a", "TENANT-A"})
    assert all(re.fullmatch(ORG_ID_PATTERN, org) for org in generated)
    events = [
        org_created({"organizationId": org, "keyMode": "shared" if i % 2 else "dedicated"})
        for i, org in enumerate(generated)
    ]
    for start in range(0, len(events), 10):
        stack.put_events(events[start : start + 10])
    stack.deliver()
    return generated


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), payload=payloads, data_type=data_types)
def test_round_trip_and_no_cross_org_decrypt(
    platform: Any, orgs: list[str], data: Any, payload: bytes, data_type: str
) -> None:
    owner = data.draw(st.sampled_from(orgs))
    other = data.draw(st.sampled_from([o for o in orgs if o != owner]))
    ciphertext = platform.envelope.encrypt(owner, data_type, payload)

    assert platform.envelope.decrypt(owner, ciphertext, data_type) == payload
    with pytest.raises(DecryptionRefused):
        platform.envelope.decrypt(other, ciphertext)
