"""Blast radius from the registry and object metadata, and the portable export decrypted with the
plain Encryption SDK."""

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider

from orgkms.export import export_org
from orgkms.report import blast_radius, breach_comparison, select_exposures
from tests.functional.test_cli import run


def test_shared_key_and_org_key_blast_radius_match_registry_and_bucket(
    stack: Any, platform: Any, create_org: Any, capsysbinary: Any, tmp_path: Path
) -> None:
    dedicated, shared_a, shared_b = (
        create_org(),
        create_org(keyMode="shared"),
        create_org(keyMode="shared"),
    )
    for org, size in ((dedicated, 300), (shared_a, 500), (shared_b, 700)):
        platform.store.put(org, "doc", "f.bin", io.BytesIO(bytes(size)))
    shared_key = platform.settings.shared_key_arn
    org_key = platform.registry.get(dedicated).encrypt_key_arn
    registry_shared = sorted(
        r.org_id for r in platform.registry.scan() if shared_key in r.decrypt_key_arns
    )
    bucket = stack.client("s3")
    listed = [
        o
        for page in bucket.get_paginator("list_objects_v2").paginate(
            Bucket=platform.settings.data_bucket, Prefix="orgs/"
        )
        for o in page.get("Contents", [])
    ]
    shared_objects = [
        o
        for o in listed
        if bucket.head_object(Bucket=platform.settings.data_bucket, Key=o["Key"])["Metadata"].get(
            "orgkms-key-arn"
        )
        == shared_key
    ]

    chart = tmp_path / "blast.svg"
    code, out, _ = run(
        capsysbinary, "--json", "blast-radius", "--key", shared_key, "--chart", str(chart)
    )
    assert code == 0
    [shared] = json.loads(out)["exposures"]
    assert sorted(shared["organizations"]) == registry_shared
    assert {shared_a, shared_b} <= set(shared["organizations"])
    assert shared["objects"] == len(shared_objects)
    assert shared["bytes"] == sum(o["Size"] for o in shared_objects)
    assert chart.read_text().startswith("<svg") and "shared key" in chart.read_text()

    code, out, _ = run(capsysbinary, "--json", "blast-radius", "--org", dedicated)
    [own] = json.loads(out)["exposures"]
    stored = bucket.head_object(Bucket=platform.settings.data_bucket, Key=f"orgs/{dedicated}/f.bin")
    assert own["keyArn"] == org_key and own["organizations"] == [dedicated]
    assert (own["objects"], own["bytes"]) == (1, stored["ContentLength"])
    assert json.loads(out)["cacheExposureSeconds"] == platform.settings.cache.max_age_seconds


def test_value_per_org_compares_a_shared_key_breach_with_an_org_key_breach(
    platform: Any, create_org: Any
) -> None:
    create_org()
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    exposures = blast_radius(records, objects)

    comparison = breach_comparison(exposures, platform.settings.shared_key_arn, 1000.0)

    everyone = comparison["allOrgsOnSharedKey"]
    assert everyone["orgs"] == len(records)
    assert everyone["value"] == 1000.0 * len(records)
    assert comparison["largestOrgKey"]["orgs"] == 1
    assert comparison["valueProtected"] == everyone["value"] - 1000.0
    assert select_exposures(exposures, records, org_id=records[0].org_id)


def test_an_export_decrypts_with_the_plain_encryption_sdk(
    platform: Any, create_org: Any, tmp_path: Path
) -> None:
    org = create_org()
    files = {"a.txt": b"alpha\n" * 1000, "nested/b.bin": bytes(range(256)) * 300}
    for name, data in files.items():
        platform.store.put(org, "record", name, io.BytesIO(data))

    manifest = export_org(
        org,
        tmp_path / "export",
        platform.envelope,
        platform.client("s3"),
        platform.settings.data_bucket,
        platform.audit,
    ).manifest

    # Only the SDK and the key ARN from the manifest: no orgkms code below.
    written = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert written == manifest
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    session = boto3.session.Session(region_name="us-east-1")._session
    for entry in written["objects"]:
        provider = StrictAwsKmsMasterKeyProvider(
            key_ids=[entry["keyArn"]], botocore_session=session
        )
        blob = (tmp_path / "export" / entry["path"]).read_bytes()
        plaintext, header = client.decrypt(source=blob, key_provider=provider)
        assert hashlib.sha256(plaintext).hexdigest() == entry["plaintextSha256"]
        assert plaintext == files[entry["name"]]
        assert dict(header.encryption_context) == entry["encryptionContext"]
        assert entry["storedBytes"] == len(blob)
    assert written["keyArns"] == [platform.registry.get(org).encrypt_key_arn]
    assert platform.audit.entries(org)[-1].action == "exported"


def test_export_refuses_a_non_empty_folder(platform: Any, create_org: Any, tmp_path: Path) -> None:
    org = create_org()
    (tmp_path / "keep.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="not empty"):
        export_org(
            org, tmp_path, platform.envelope, platform.client("s3"), platform.settings.data_bucket
        )
