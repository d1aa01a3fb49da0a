"""A corpus of malformed events and ciphertexts, fed to every handler and every CLI command.

Each input must get its own clear, one-line error: the control-plane function fails exactly that
message of its batch (the good one beside it is done, nothing is lost), the migration function
fails the step with ``InvalidEvent``, and the CLI prints one line on stderr, no traceback,
nothing on stdout, with a non-zero exit status.
"""

import json
import random
from pathlib import Path
from typing import Any

from orgkms.cli import EXIT_REFUSED, main
from tests.functional.test_bad_input import sqs_event
from tests.stress.conftest import CANARY
from tests.unit.test_events import body

SEED = 20261209
GOOD = '{"organizationId": "placeholder"}'


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def event_corpus() -> dict[str, str]:
    """name -> SQS body that can never succeed."""
    valid = body({"organizationId": "acme-corpus"})
    rng = random.Random(SEED)
    flipped = bytearray(valid.encode())
    for _ in range(6):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(7)
    wrong_types = {
        f"org-id-{kind}": body({"organizationId": value})
        for kind, value in {
            "null": None,
            "number": 7,
            "bool": True,
            "list": ["a"],
            "object": {"id": "a"},
            "empty": "",
            "huge": "a" * 10_000,
        }.items()
    }
    return {
        "empty": "",
        "whitespace": "   \n",
        "null": "null",
        "number": "42",
        "string": '"org-created"',
        "array": "[]",
        "truncated": valid[: len(valid) // 2],
        "bit-flipped": flipped.decode("ascii", "replace"),
        "huge": body({"organizationId": "acme-corpus", "pad": "x" * 300_000}),
        "deep-json": "[" * 5_000 + "0" + "]" * 5_000,
        "deep-detail": body({"organizationId": "acme-corpus", "n": nested(40)}),
        "detail-not-object": body(["organizationId", "acme"]),
        "detail-type-number": body({"organizationId": "acme"}, 5),  # type: ignore[arg-type]
        "unknown-type": body({"organizationId": "acme"}, "org-vanished"),
        "wrong-source": body({"organizationId": "acme"}, source="attacker"),
        "lookalike-id": body({"organizationId": "\u0430cme-corpus"}),
        "control-chars": body({"organizationId": "acme\u0000corpus"}),
        "bad-key-mode": body({"organizationId": "acme-corpus", "keyMode": ["shared"]}),
        "migration-bad-window": body(
            {"organizationId": "acme-corpus", "deletionWindowDays": "seven"}, "migration-requested"
        ),
        "migration-alias-target": body(
            {"organizationId": "acme-corpus", "targetKeyArn": "alias/x"}, "migration-requested"
        ),
        **wrong_types,
    }


def test_every_malformed_event_fails_alone_and_the_batch_goes_on(
    stack: Any, platform: Any, new_org: Any, figures: Any
) -> None:
    corpus = event_corpus()
    function = stack.outputs["OrgLifecycleFunctionName"]
    failed_alone, goods = 0, []
    for name, raw in corpus.items():
        good = new_org("corpus")
        goods.append(good)
        result, crashed = stack.runtime.invoke(
            function, sqs_event({name: raw, "good": body({"organizationId": good})})
        )
        assert not crashed, name
        assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [name], name
        failed_alone += 1
    lost = [
        org
        for org in goods
        if not (platform.registry.get(org) and platform.registry.get(org).ready)
    ]
    figures.counts.update(
        malformed_events=len(corpus), failed_alone=failed_alone, good_lost=len(lost)
    )
    assert lost == []


def test_every_malformed_step_event_fails_the_step_with_a_clear_error(
    stack: Any, figures: Any
) -> None:
    corpus: list[Any] = [
        None,
        0,
        "prepare",
        [],
        {},
        {"action": None},
        {"action": "prepare"},
        {"action": "prepare", "execution": ""},
        {"action": "drop_table", "execution": "x"},
        {"action": {"a": 1}, "execution": "x"},
        {"action": "switch", "execution": "x", "state": []},
        {"action": "switch", "execution": 5, "state": {}},
        {"action": "x" * 100_000, "execution": "x"},
    ]
    function = stack.outputs["MigrationFunctionName"]
    for event in corpus:
        result, failed = stack.runtime.invoke(function, json.dumps(event))
        assert failed and result["errorType"] == "InvalidEvent", (event, result)
        assert len(result["errorMessage"]) < 200 and "\n" not in result["errorMessage"]
    figures.counts.update(malformed_step_events=len(corpus), clear_errors=len(corpus))


def ciphertext_corpus(blob: bytes) -> dict[str, bytes]:
    rng = random.Random(SEED)
    flipped = bytearray(blob)
    flipped[rng.randrange(len(flipped))] ^= 0x10
    return {
        "empty": b"",
        "one-byte": blob[:1],
        "header-only": blob[:60],
        "truncated": blob[: len(blob) - 7],
        "bit-flipped": bytes(flipped),
        "concatenated": blob + blob,
        "trailing-byte": blob + b"\x00",
        "garbage": bytes(rng.randrange(256) for _ in range(4096)),
        "huge-garbage": b"\x02\x05" + b"\xff" * (3 * 1024 * 1024),
        "json": b'{"ciphertext": "no"}',
    }


def run_cli(capsysbinary: Any, *argv: str) -> tuple[int, bytes, bytes]:
    capsysbinary.readouterr()
    code = main(list(argv))
    out, err = capsysbinary.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: bytes, err: bytes, label: str) -> None:
    assert code != 0, label
    assert out == b"", label
    assert err.count(b"\n") == 1 and err.startswith(b"orgkms: error: "), (label, err[:300])
    assert b"Traceback" not in err and CANARY not in err, label


def test_every_cli_command_answers_bad_input_with_one_line(
    stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any, figures: Any
) -> None:
    org = create_org()
    plain, sealed = tmp_path / "plain", tmp_path / "sealed"
    plain.write_bytes(CANARY * 10)
    assert (
        run_cli(
            capsysbinary, "encrypt", "--org", org, "--type", "note", str(plain), "-o", str(sealed)
        )[0]
        == 0
    )
    tried = 0

    for name, data in ciphertext_corpus(sealed.read_bytes()).items():
        bad = tmp_path / f"bad-{name}"
        bad.write_bytes(data)
        for argv in (
            ["decrypt", "--org", org, str(bad)],
            ["decrypt", "--org", org, str(bad), "-o", str(tmp_path / "out")],
        ):
            code, out, err = run_cli(capsysbinary, *argv)
            assert_one_line_error(code, out, err, f"decrypt {name}")
            assert code == EXIT_REFUSED, name
            assert not (tmp_path / "out").exists()
            tried += 1

    events = {name: raw for name, raw in event_corpus().items() if len(raw) < 100_000}
    events |= {"not-an-event": json.dumps({"detail": 1}), "list-event": "[1, 2]"}
    for name, raw in events.items():
        path = tmp_path / f"event-{name}.json"
        path.write_text(raw)
        code, out, err = run_cli(capsysbinary, "send", str(path))
        if code == 0:  # well-formed EventBridge envelope: the bus takes it, the consumer refuses it
            assert out.startswith(b"sent "), name
            continue
        assert_one_line_error(code, out, err, f"send {name}")
        tried += 1
    stack.deliver()

    commands = [
        ["encrypt", "--org", "\u0430cme", "--type", "note", str(plain)],
        ["encrypt", "--org", org, "--type", "bad type!", str(plain)],
        ["encrypt", "--org", org, "--type", "note", str(tmp_path / "missing")],
        ["encrypt", "--org", org, "--type", "note", str(tmp_path)],
        ["decrypt", "--org", "x" * 500, str(sealed)],
        ["put", "--org", org, "--type", "note", str(tmp_path / "missing")],
        ["put", "--org", org, "--type", "note", str(plain), "--name", "../escape"],
        ["put", "--org", "nobody-here", "--type", "note", str(plain)],
        ["get", "--org", org, "no-such-object"],
        ["get", "--org", org, "a/../../b"],
        ["get", "--org", org, "\x00"],
        ["status", "\u0430cme"],
        ["status", "nobody-here"],
        ["migrate", "nobody-here"],
        ["migrate", org, "--deletion-window", "3"],
        ["migrate", org, "--target-key", "alias/other"],
        ["migrate", "bad org!"],
        ["send", str(tmp_path / "missing.json")],
    ]
    for argv in commands:
        code, out, err = run_cli(capsysbinary, *argv)
        assert_one_line_error(code, out, err, " ".join(argv)[:80])
        tried += 1
    figures.counts.update(cli_bad_inputs=tried, one_line_errors=tried, tracebacks=0)
