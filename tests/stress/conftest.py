"""The stress tier: reduced sizes in `make test`, full sizes with ``ORGKMS_STRESS=full``.

Every test here is marked ``stress``, prints what it tried and its figures (``pytest -s``), and
adds them to one summary printed at the end of the run. While the tier runs, every log record
and every data key KMS hands out are collected, so the log-hygiene test (run last) can look for
the canary plaintext, data keys and key material in everything the tier logged.
"""

import base64
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

FULL = os.environ.get("ORGKMS_STRESS", "").lower() == "full"
# A plaintext that must never appear in a log line; stress payloads carry it.
CANARY = b"orgkms-canary-plaintext-5f1c9e2a"


@dataclass(frozen=True)
class Sizes:
    isolation_attempts: int
    isolation_examples: int
    fault_events: int
    migration_kills: int
    migration_objects: int


SIZES = Sizes(100_000, 2_000, 1_000, 20, 12) if FULL else Sizes(6_000, 150, 100, 4, 8)


@dataclass
class Figures:
    """What one stress test tried and counted."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in self.counts.items()
        )
        return f"{self.name}: {parts}"


_SUMMARY: list[Figures] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """Figures of this test: printed when it ends and kept for the tier's summary."""
    recorded = Figures(request.node.name)
    yield recorded
    if recorded.counts:
        _SUMMARY.append(recorded)
        print(f"\n[stress {'full' if FULL else 'reduced'}] {recorded.line()}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier, and run the log-hygiene check of the whole tier after everything else."""
    here = os.path.dirname(__file__)
    last = []
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.stress)
            if item.name == "test_nothing_the_tier_logged_holds_plaintext_or_keys":
                last.append(item)
    for item in last:
        items.remove(item)
        items.append(item)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _SUMMARY:
        return
    terminalreporter.section(f"orgkms stress figures ({'full' if FULL else 'reduced'} size)")
    for recorded in _SUMMARY:
        terminalreporter.write_line(recorded.line())
    target = os.environ.get("ORGKMS_STRESS_FIGURES")
    if target:
        with open(target, "w") as out:
            json.dump({r.name: r.counts for r in _SUMMARY}, out, indent=2)


# ------------------------------------------------------------------ what the tier logged


class LogCollector(logging.Handler):
    """Every record of every logger, formatted as its handlers would, plus its raw fields."""

    def __init__(self, lines: list[str] | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = [] if lines is None else lines

    def emit(self, record: logging.LogRecord) -> None:
        formatter = _powertools_formatter() if record.name.startswith("orgkms") else None
        try:
            text = (formatter or logging.Formatter()).format(record)
        except Exception:
            text = record.getMessage()
        self.lines.append(text)
        self.lines.append(repr({k: v for k, v in record.__dict__.items() if k != "exc_info"}))


def _powertools_formatter() -> logging.Formatter | None:
    handler = getattr(logging.getLogger("orgkms"), "powertools_handler", None)
    return handler.formatter if handler is not None else None


class DataKeys:
    """Plaintext data keys KMS returned (GenerateDataKey, Decrypt), taken inside the emulator."""

    def __init__(self) -> None:
        self.keys: set[bytes] = set()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from moto.kms.models import KmsBackend

        for name in ("generate_data_key", "decrypt"):
            original = getattr(KmsBackend, name)
            monkeypatch.setattr(KmsBackend, name, self._recording(original))

    def _recording(self, original: Any) -> Any:
        def wrapper(backend: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(backend, *args, **kwargs)
            plaintext = result[0] if isinstance(result, tuple) else None
            if isinstance(plaintext, bytes):
                self.keys.add(plaintext)
            return result

        return wrapper


def secret_forms(secret: bytes) -> set[str]:
    """The ways a secret could show up in a text line: raw, hex, base64, repr."""
    forms = {secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]}
    with contextlib.suppress(UnicodeDecodeError):
        forms.add(secret.decode())
    return {form for form in forms if len(form) >= 16}


@dataclass
class TierCapture:
    logs: LogCollector
    data_keys: DataKeys


@pytest.fixture(scope="session")
def tier_capture() -> Iterator[TierCapture]:
    monkeypatch = pytest.MonkeyPatch()
    capture = TierCapture(LogCollector(), DataKeys())
    capture.data_keys.install(monkeypatch)
    from aws_lambda_powertools import Logger

    from orgkms.observability import SERVICE

    Logger(service=SERVICE)  # as a handler module does: its own handler stays the logger's first
    # One handler per logger: Powertools filters the root logger's handlers so that its own
    # records are not seen twice there; the "orgkms" logger's handler sees them.
    handlers = {
        logging.getLogger(): LogCollector(capture.logs.lines),
        logging.getLogger("orgkms"): capture.logs,
    }
    for logger, handler in handlers.items():
        logger.addHandler(handler)
    yield capture
    for logger, handler in handlers.items():
        logger.removeHandler(handler)
    monkeypatch.undo()


@pytest.fixture(autouse=True)
def _capture_the_tier(tier_capture: TierCapture) -> TierCapture:
    return tier_capture
