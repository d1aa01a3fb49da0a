"""Org data in S3: orgs/<org>/<name>, ESDK messages, metadata naming the key and format."""

import io
from pathlib import Path
from typing import Any

import pytest

from orgkms.errors import DecryptionRefused
from orgkms.store import FORMAT_VERSION, ObjectNotFound, object_key
from tests.conftest import copy_object_to_org


def test_put_stores_an_esdk_message_under_the_orgs_prefix_with_metadata(
    stack: Any, platform: Any, create_org: Any
) -> None:
    org = create_org()
    data = b"quarterly numbers\n" * 1000

    stored = platform.store.put(org, "report", "q4/report.txt", io.BytesIO(data), len(data))

    head = stack.client("s3").head_object(Bucket=platform.settings.data_bucket, Key=stored.s3_key)
    assert stored.s3_key == f"orgs/{org}/q4/report.txt"
    assert head["Metadata"] == {
        "orgkms-key-arn": platform.registry.get(org).encrypt_key_arn,
        "orgkms-format": FORMAT_VERSION,
        "orgkms-data-type": "report",
    }
    body = (
        stack.client("s3")
        .get_object(Bucket=platform.settings.data_bucket, Key=stored.s3_key)["Body"]
        .read()
    )
    assert body[:1] == b"\x02" and data[:20] not in body  # ESDK message format version 2
    out = io.BytesIO()
    platform.store.get(org, "q4/report.txt", out, "report")
    assert out.getvalue() == data


def test_a_large_object_streams_through_multipart_upload(platform: Any, create_org: Any) -> None:
    org = create_org()
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: several multipart parts

    platform.store.put(org, "blob", "big.bin", io.BytesIO(data), len(data))
    out = io.BytesIO()
    platform.store.get(org, "big.bin", out)

    assert out.getvalue() == data


def test_objects_copied_under_another_orgs_prefix_are_still_refused(
    stack: Any, platform: Any, create_org: Any
) -> None:
    a, b = create_org(), create_org()
    stored = platform.store.put(a, "report", "x.txt", io.BytesIO(b"secret"))
    copy_object_to_org(stack, platform, stored.s3_key, b, "x.txt")

    with pytest.raises(DecryptionRefused):
        platform.store.get(b, "x.txt", io.BytesIO())


def test_a_refused_get_to_file_leaves_no_file_behind(
    stack: Any, platform: Any, create_org: Any, tmp_path: Path
) -> None:
    a, b = create_org(), create_org()
    stored = platform.store.put(a, "report", "x.txt", io.BytesIO(b"secret" * 100_000))
    copy_object_to_org(stack, platform, stored.s3_key, b, "x.txt")

    with pytest.raises(DecryptionRefused):
        platform.store.get_to_file(b, "x.txt", str(tmp_path / "out.txt"))
    assert list(tmp_path.iterdir()) == []


def test_missing_object_is_a_clear_error(platform: Any, create_org: Any) -> None:
    with pytest.raises(ObjectNotFound, match=r"has no object 'nope\.txt'"):
        platform.store.get(create_org(), "nope.txt", io.BytesIO())


@pytest.mark.parametrize("name", ["", "/abs", "../escape", "a/../../b", "a//b", "x\n"])
def test_names_that_could_leave_the_prefix_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid object name"):
        object_key("acme", name)
