"""The orgkms command as a user meets it: one line on stderr and no output when refused."""

from pathlib import Path
from typing import Any

import pytest

from orgkms.cli import EXIT_REFUSED, main


def run(capsysbinary: Any, *argv: str) -> tuple[int, bytes, bytes]:
    capsysbinary.readouterr()  # drop what fixtures printed (handler logs)
    code = main(list(argv))
    out, err = capsysbinary.readouterr()
    return code, out, err


def test_encrypt_then_decrypt_files(
    stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    org = create_org()
    plain, sealed, back = tmp_path / "p.txt", tmp_path / "p.enc", tmp_path / "back.txt"
    plain.write_bytes(b"hello org\n" * 50)

    assert (
        run(capsysbinary, "encrypt", "--org", org, "--type", "note", str(plain), "-o", str(sealed))[
            0
        ]
        == 0
    )
    assert run(capsysbinary, "decrypt", "--org", org, str(sealed), "-o", str(back))[0] == 0
    assert back.read_bytes() == plain.read_bytes()


def test_decrypting_as_another_org_is_one_line_and_no_plaintext(
    stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    a, b = create_org(), create_org()
    plain, sealed = tmp_path / "p.txt", tmp_path / "p.enc"
    plain.write_bytes(b"TOP-SECRET-CANARY")
    run(capsysbinary, "encrypt", "--org", a, "--type", "note", str(plain), "-o", str(sealed))

    code, out, err = run(capsysbinary, "decrypt", "--org", b, str(sealed))

    assert code == EXIT_REFUSED
    assert out == b""
    assert err.count(b"\n") == 1 and err.startswith(b"orgkms: error: ciphertext refused")
    assert b"TOP-SECRET-CANARY" not in err and b"Traceback" not in err


@pytest.mark.parametrize("garbage", [b"", b"\x02" + b"\x00" * 300, b"not a message at all"])
def test_garbage_ciphertext_is_refused_without_a_traceback(
    stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any, garbage: bytes
) -> None:
    org = create_org()
    bad = tmp_path / "bad.enc"
    bad.write_bytes(garbage)

    code, out, err = run(
        capsysbinary, "decrypt", "--org", org, str(bad), "-o", str(tmp_path / "out")
    )

    assert code == EXIT_REFUSED and out == b"" and b"Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_put_get_and_status(stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any) -> None:
    org = create_org()
    source = tmp_path / "contract.pdf"
    source.write_bytes(b"%PDF-1.7 pretend" * 100)

    code, out, _ = run(capsysbinary, "put", "--org", org, "--type", "contract", str(source))
    assert code == 0 and f"orgs/{org}/contract.pdf".encode() in out
    code, out, _ = run(capsysbinary, "get", "--org", org, "contract.pdf")
    assert code == 0 and out == source.read_bytes()
    code, out, _ = run(capsysbinary, "--json", "status", org)
    assert code == 0 and b'"objects": 1' in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "no-such-org"], b"not registered"),
        (["get", "--org", "acme", "../x"], b"invalid"),
        (["encrypt", "--org", "bad org", "--type", "x", "/dev/null"], b"organization id must"),
        (["--stack-name", "missing", "status"], b"stack 'missing' not found"),
    ],
)
def test_errors_are_one_line_on_stderr(
    stack: Any, capsysbinary: Any, argv: list[str], message: bytes
) -> None:
    code, out, err = run(capsysbinary, *argv)

    assert code != 0 and out == b""
    assert err.count(b"\n") == 1 and message in err


def test_serve_refuses_addresses_off_loopback(capsysbinary: Any) -> None:
    code, _, err = run(capsysbinary, "local", "serve", "--host", "0.0.0.0")
    assert code != 0 and b"loopback only" in err


def test_send_puts_a_sample_event_on_the_bus(
    stack: Any, platform: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    import json

    sample = json.loads((Path(__file__).parents[2] / "events" / "org-created.json").read_text())
    sample["detail"]["organizationId"] = "sent-by-cli"
    path = tmp_path / "event.json"
    path.write_text(json.dumps(sample))

    code, out, _ = run(capsysbinary, "send", str(path))
    stack.deliver()

    assert code == 0 and b"sent org-created" in out
    assert platform.registry.get("sent-by-cli").ready
