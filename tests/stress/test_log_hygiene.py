"""No log line, and nothing the demo prints, holds a plaintext, a data key or key material.

The demo runs in a child process with files carrying a canary plaintext; everything it writes
to stdout and stderr is read. The stress tier itself runs with every log record collected; its
check runs after the rest of the tier. Data keys are taken from the emulator's answers to
GenerateDataKey and Decrypt, key material from the emulator's keys; each is looked for raw, in
hex, in base64 and as a Python bytes literal.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.stress.conftest import CANARY, TierCapture, secret_forms
from tests.stress.demo_probe import key_material

ROOT = Path(__file__).resolve().parents[2]


def leaks(lines: list[str], secrets: set[bytes]) -> list[str]:
    forms = {form for secret in secrets for form in secret_forms(secret)}
    return [line[:200] for line in lines if any(form in line for form in forms)]


def emulator_key_material() -> set[bytes]:
    from moto.kms.models import kms_backends

    return key_material(kms_backends)


def test_the_demo_prints_no_plaintext_data_key_or_key_material(
    tmp_path: Path, figures: Any
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"record-{i}.txt").write_bytes(CANARY + b" customer record %d\n" % i)
    found = tmp_path / "secrets.json"
    env = {**os.environ, "ORGKMS_PROJECT_ROOT": str(ROOT), "POWERTOOLS_LOG_LEVEL": "DEBUG"}

    done = subprocess.run(
        [sys.executable, "-m", "tests.stress.demo_probe", str(data), str(found)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=280,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    secrets = json.loads(found.read_text())
    data_keys = {bytes.fromhex(k) for k in secrets["data_keys"]}
    material = {bytes.fromhex(k) for k in secrets["material"]}
    lines = (done.stdout + done.stderr).decode(errors="replace").splitlines()
    figures.counts.update(
        demo_lines=len(lines),
        data_keys=len(data_keys),
        keys_with_material=len(material),
        lines_with_canary=len(leaks(lines, {CANARY})),
        lines_with_data_key=len(leaks(lines, data_keys)),
        lines_with_key_material=len(leaks(lines, material)),
    )
    assert data_keys and material and len(lines) > 20
    assert leaks(lines, {CANARY}) == []
    assert leaks(lines, data_keys) == []
    assert leaks(lines, material) == []


def test_nothing_the_tier_logged_holds_plaintext_or_keys(
    tier_capture: TierCapture, figures: Any
) -> None:
    lines = tier_capture.logs.lines
    data_keys = tier_capture.data_keys.keys
    material = emulator_key_material()
    figures.counts.update(
        log_records=len(lines) // 2,
        data_keys=len(data_keys),
        keys_with_material=len(material),
        lines_with_canary=len(leaks(lines, {CANARY})),
        lines_with_data_key=len(leaks(lines, data_keys)),
        lines_with_key_material=len(leaks(lines, material)),
    )
    assert lines and data_keys
    assert leaks(lines, {CANARY}) == []
    assert leaks(lines, data_keys) == []
    assert leaks(lines, material) == []
