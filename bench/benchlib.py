"""Shared pieces of the benchmarks: figures and their table, the embedded stack, I/O helpers.

Nothing here measures anything by itself. Every benchmark module returns a list of
:class:`Figure`; ``run.py`` prints them as one table. All AWS calls go to the embedded emulator
(moto, in this process): no network is used.
"""

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ORG = "bench-org"
DATA_TYPE = "bench"
CONTEXT = {"OrganizationId": ORG, "DataType": DATA_TYPE}
MIB = 1 << 20
# Keeps the handlers' INFO logs and metrics off the terminal while the org key is created.
QUIET_HANDLERS = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class Figure:
    """One measured figure; ``goal`` is an upper bound (value <= goal passes) or None."""

    bench: str
    label: str
    value: float
    unit: str = ""
    goal: float | None = None

    @property
    def result(self) -> str:
        if self.goal is None:
            return ""
        return "PASS" if self.value <= self.goal else "MISS"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result or None}


@dataclass
class Report:
    """Figures plus free-form lines (diagnosis) a benchmark wants printed under the table."""

    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: "Report") -> None:
        self.figures += other.figures
        self.details.update(other.details)
        self.notes += other.notes


# ----------------------------------------------------------------- formatting


def fmt(value: float) -> str:
    """A number for the table: integers with separators, others to 3 significant digits."""
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def render_table(figures: list[Figure]) -> str:
    """The figures as a plain-text table, one row each."""
    header = ("#", "measure", "value", "unit", "goal", "result")
    rows = [
        (
            f.bench,
            f.label,
            fmt(f.value),
            f.unit,
            "" if f.goal is None else f"<= {fmt(f.goal)}",
            f.result,
        )
        for f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    aligns = ["<", "<", ">", "<", "<", "<"]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r).rstrip() for r in rows)])


# ----------------------------------------------------------------- timing


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds over ``repeats`` calls of ``fn``."""
    return statistics.median(timed(fn) for _ in range(repeats))


# ----------------------------------------------------------------- I/O helpers


class NullSink(io.RawIOBase):
    """A writable file that discards everything and only counts the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.count += size
        return size


class GeneratorReader(io.RawIOBase):
    """A readable, non-seekable file over a generator of chunks: nothing is held beyond one."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def pattern_chunks(total: int, block: bytes) -> Iterator[bytes]:
    """``total`` bytes made lazily by repeating ``block`` (random once; content is irrelevant)."""
    left = total
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        left -= len(piece)
        yield piece


# ----------------------------------------------------------------- the embedded stack


@dataclass
class BenchStack:
    """The deployed embedded stack with the bench organization's key created."""

    stack: Any
    platform: Any
    key_arn: str

    @property
    def envelope(self) -> Any:
        return self.platform.envelope


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """Deploy template.yaml into moto in this process and create the bench organization's key."""
    from orgkms.local import EmbeddedStack

    with EmbeddedStack(handler_env=QUIET_HANDLERS) as stack:
        stack.put_events([_org_created_event(ORG)])
        with contextlib.redirect_stdout(io.StringIO()):
            stack.deliver()
        platform = stack.platform()
        record = platform.registry.get(ORG)
        if record is None or not record.ready:
            raise RuntimeError(f"the embedded stack did not create {ORG!r}'s key")
        yield BenchStack(stack=stack, platform=platform, key_arn=record.encrypt_key_arn)


def _org_created_event(org_id: str) -> dict[str, str]:
    return {
        "Source": "saas.control-plane",
        "DetailType": "org-created",
        "Detail": json.dumps({"organizationId": org_id}),
    }


def random_records(count: int, size: int) -> list[bytes]:
    """``count`` distinct random records of ``size`` bytes (never printed)."""
    return [os.urandom(size) for _ in range(count)]


CHILD_MARK = "RESULT "


def run_child(script: Path, args: list[str], label: str, timeout: float) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a fresh interpreter; return the JSON it printed after
    CHILD_MARK (a child measures memory without this process's own)."""
    command = [sys.executable, str(script), "--child", *args]
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(CHILD_MARK)]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{label} child failed (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1][len(CHILD_MARK) :])
    return result
