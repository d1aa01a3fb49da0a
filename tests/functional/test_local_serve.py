"""`orgkms local serve`: the stack behind an HTTP endpoint on loopback, usable with boto3."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orgkms.cli", "local", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready "):
            break
        if time.monotonic() > deadline:
            break
    else:
        pytest.fail(f"serve exited with {proc.wait()}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def test_served_stack_creates_an_org_key_from_an_event(endpoint: str) -> None:
    cfn = client(endpoint, "cloudformation")
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName="orgkms")["Stacks"][0]["Outputs"]
    }

    client(endpoint, "events").put_events(
        Entries=[
            {
                "EventBusName": outputs["ControlPlaneBusName"],
                "Source": "saas.control-plane",
                "DetailType": "org-created",
                "Detail": json.dumps({"organizationId": "served-org"}),
            }
        ]
    )

    ddb = client(endpoint, "dynamodb")
    item: dict[str, Any] = {}
    for _ in range(100):
        item = ddb.get_item(
            TableName=outputs["OrgRegistryTableName"], Key={"organizationId": {"S": "served-org"}}
        ).get("Item", {})
        if item.get("status", {}).get("S") == "READY":
            break
        time.sleep(0.1)
    assert item["encryptKeyArn"]["S"].startswith("arn:aws:kms:us-east-1:")
    aliases = client(endpoint, "kms").list_aliases()["Aliases"]
    assert "alias/org-served-org-encryption" in {a["AliasName"] for a in aliases}


def test_the_cli_works_against_the_served_stack(endpoint: str) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    cli = [sys.executable, "-m", "orgkms.cli"]
    for _ in range(100):
        status = subprocess.run([*cli, "status", "served-org"], env=env, capture_output=True)
        if status.returncode == 0:
            break
        time.sleep(0.1)
    sealed = subprocess.run(
        [*cli, "encrypt", "--org", "served-org", "--type", "note"],
        input=b"over http",
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    opened = subprocess.run(
        [*cli, "decrypt", "--org", "served-org"],
        input=sealed,
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    assert opened == b"over http"
