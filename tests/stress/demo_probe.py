"""Run the demo and record what must never be logged: ``python -m tests.stress.demo_probe DATA
OUT.json`` writes the data keys KMS handed out and every key's material (hex) to OUT.json.

Run by the log-hygiene test in a child process, whose stdout and stderr it reads whole.
"""

import json
import sys
from pathlib import Path
from typing import Any


def main(data: str, out: str) -> int:
    from moto.kms.models import KmsBackend, kms_backends

    from orgkms.demo import run_demo

    data_keys: set[bytes] = set()
    for name in ("generate_data_key", "decrypt"):
        original = getattr(KmsBackend, name)

        def recording(backend: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            result = _original(backend, *args, **kwargs)
            data_keys.add(result[0])
            return result

        setattr(KmsBackend, name, recording)
    material: set[bytes] = set()
    original_stop = _stack_stop_hook(lambda: material.update(key_material(kms_backends)))
    try:
        code = run_demo(Path(data), "orgkms")
    finally:
        original_stop()
    Path(out).write_text(
        json.dumps(
            {"data_keys": [k.hex() for k in data_keys], "material": [m.hex() for m in material]}
        )
    )
    return code


def key_material(backends: Any) -> set[bytes]:
    """The material of every key the emulator holds."""
    found = set()
    for account in backends.values():
        for backend in account.values():
            for key in backend.keys.values():
                if isinstance(getattr(key, "key_material", None), bytes):
                    found.add(key.key_material)
    return found


def _stack_stop_hook(before_stop: Any) -> Any:
    """Read the emulator's keys just before the demo's stack stops (and forgets them)."""
    from orgkms.local.stack import EmbeddedStack

    original = EmbeddedStack.stop

    def stop(self: Any) -> None:
        before_stop()
        original(self)

    EmbeddedStack.stop = stop  # type: ignore[method-assign]

    def restore() -> None:
        EmbeddedStack.stop = original  # type: ignore[method-assign]

    return restore


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
