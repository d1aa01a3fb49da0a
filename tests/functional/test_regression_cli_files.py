"""Found in review: where `orgkms decrypt -o` puts plaintext when things go wrong."""

import os
from pathlib import Path
from typing import Any

from orgkms.cli import main

CANARY = b"TOP-SECRET-CANARY-" * 64


def _sealed(org: str, tmp_path: Path) -> Path:
    plain, sealed = tmp_path / "plain.txt", tmp_path / "sealed.enc"
    plain.write_bytes(CANARY)
    assert main(["encrypt", "--org", org, "--type", "note", str(plain), "-o", str(sealed)]) == 0
    plain.unlink()
    return sealed


def _files_holding_plaintext(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.rglob("*") if p.is_file() and b"TOP-SECRET-CANARY" in p.read_bytes()
    )


def test_decrypt_to_an_existing_directory_leaves_no_plaintext_behind(
    stack: Any, create_org: Any, tmp_path: Path, capsysbinary: Any
) -> None:
    """Fixed (medium): a failed `decrypt -o` leaves the whole plaintext in a hidden file.

    cli._output writes to ``.<name>.orgkms-partial`` and renames it in __exit__. When the rename
    fails (here: ``-o`` names an existing directory, IsADirectoryError; also a read-only target,
    a cross-device path, ...) the exception escapes __exit__ before the temporary file is
    removed: the command reports an error (exit 1) but the complete, verified plaintext stays on
    disk in ``.outdir.orgkms-partial``, with the umask's permissions (0644 here), where nobody
    expects it. (store.get_to_file does clean up in the same situation.)

    Fix: in _output.__exit__, wrap os.replace in try/except that unlinks the temporary file
    and re-raises; create the temporary file with mkstemp (0600, O_EXCL).
    """
    org = create_org()
    sealed = _sealed(org, tmp_path)
    (tmp_path / "outdir").mkdir()
    capsysbinary.readouterr()

    code = main(["decrypt", "--org", org, str(sealed), "-o", str(tmp_path / "outdir")])

    assert code != 0
    assert _files_holding_plaintext(tmp_path) == []


def test_decrypt_to_a_file_does_not_follow_a_planted_temporary_name(
    stack: Any, create_org: Any, tmp_path: Path
) -> None:
    """Fixed (low): the temporary name is predictable and opened without O_EXCL/O_NOFOLLOW.

    `orgkms decrypt -o DIR/out` opens ``DIR/.out.orgkms-partial`` with open("wb"). Anyone able
    to write in DIR can plant a symlink there: the plaintext is written into the symlink's
    target (truncating it), and on refusal only the link is unlinked, so the authenticated
    frames written before the refusal stay in the target.

    Fix: tempfile.mkstemp(dir=..., prefix=".orgkms-") as store.get_to_file does.
    """
    org = create_org()
    sealed = _sealed(org, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.txt"
    victim.write_bytes(b"unrelated file")
    outdir = tmp_path / "out"
    outdir.mkdir()
    os.symlink(victim, outdir / ".result.orgkms-partial")

    main(["decrypt", "--org", org, str(sealed), "-o", str(outdir / "result")])

    assert victim.read_bytes() == b"unrelated file"
