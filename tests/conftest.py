"""Shared fixtures. Functional tests share one embedded stack and give each test its own orgs."""

import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# No test may reach AWS: credentials that only the emulator accepts, and no endpoint override.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from orgkms.local import EmbeddedStack

    with EmbeddedStack() as embedded:
        yield embedded


@pytest.fixture(scope="session")
def platform(stack: Any) -> Any:
    return stack.platform()


@pytest.fixture
def new_org() -> Any:
    """A fresh organization id per call (case and charset within the contract)."""

    def make(prefix: str = "org") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


def org_created(detail: dict[str, Any]) -> dict[str, Any]:
    from orgkms.models import control_plane_entry

    return control_plane_entry("org-created", detail)


@pytest.fixture
def create_org(stack: Any, new_org: Any) -> Any:
    """Create an org through the real path: event -> bus -> queue -> handler. Returns its id."""

    def create(org_id: str | None = None, **detail: Any) -> str:
        org_id = org_id or new_org()
        stack.put_events([org_created({"organizationId": org_id, **detail})])
        stack.deliver()
        return org_id

    return create


@pytest.fixture(autouse=True)
def _no_sockets_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Functional tests run in-process; any connection attempt off loopback fails the test."""
    original = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else ""
        if host and host not in {"127.0.0.1", "::1", "localhost"}:
            raise AssertionError(f"test tried to connect to {host}")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def copy_object_to_org(stack: Any, platform: Any, s3_key: str, org_id: str, name: str) -> None:
    """Plant a copy of a stored object under another organization's prefix (an attacker's or a
    bug's doing): the copy must still be refused there."""
    bucket = platform.settings.data_bucket
    stack.client("s3").copy_object(
        Bucket=bucket, Key=f"orgs/{org_id}/{name}", CopySource={"Bucket": bucket, "Key": s3_key}
    )
