"""Benchmark 3: peak resident memory growth while streaming 1 GiB (quick: 128 MiB) both ways.

Runs in a child process of its own (``python bench/memory.py --child SIZE``) so that nothing the
parent holds counts. The child deploys the embedded stack, warms the envelope up with a small
stream, then:

1. ``encrypt_stream`` reads a generator-backed, non-seekable file that makes the bytes lazily
   (one random 1 MiB block repeated: the GiB never exists in memory) and writes the message to a
   file in a ``tempfile.TemporaryDirectory`` (page cache, not this process's memory);
2. ``decrypt_stream`` reads that file back into a sink that discards (and counts) the bytes.

Memory: just before step 1 the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``) and
the current VmRSS read; after step 2 VmHWM (the peak since) is read. A thread also samples VmRSS
every 5 ms, which stands in for VmHWM if the reset is not allowed. Growth = peak - baseline.
The child prints one ``RESULT {json}`` line; the parent turns it into figures.
"""

import argparse
import gc
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import (
    CHILD_MARK,
    DATA_TYPE,
    MIB,
    ORG,
    Figure,
    GeneratorReader,
    NullSink,
    Report,
    bench_stack,
    run_child,
)
from benchlib import pattern_chunks as chunks

HERE = Path(__file__).resolve()
BLOCK = 1 * MIB
CHILD_TIMEOUT = 900


def run(size: int) -> Report:
    """Measure in a fresh child process and report growth in MiB (goal <= 64)."""
    result = run_child(HERE, [str(size)], "memory", CHILD_TIMEOUT)
    name = f"stream {size / MIB:,.0f} MiB through and back"
    growth = result["growth_kib"] / 1024
    figures = [
        Figure("3", f"{name}: baseline RSS", result["baseline_kib"] / 1024, "MiB"),
        Figure("3", f"{name}: peak RSS growth", growth, "MiB", goal=64),
        Figure("3", f"{name}: encrypt + decrypt time", result["seconds"], "s"),
    ]
    note = f"3: peak RSS from {result['method']}; growth = peak - RSS just before streaming"
    return Report(figures=figures, details={"memory": result}, notes=[note])


# ----------------------------------------------------------------- the child


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler(threading.Thread):
    """Samples VmRSS until stopped; ``peak`` is the highest seen, in KiB."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = _status_kib("VmRSS")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, _status_kib("VmRSS"))

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def _stream_both_ways(envelope: Any, size: int, folder: str) -> None:
    """encrypt_stream lazily made bytes into a file, then decrypt_stream it into a null sink."""
    block = os.urandom(BLOCK)
    path = Path(folder) / "message.bin"
    with path.open("wb") as sink:
        envelope.encrypt_stream(ORG, DATA_TYPE, GeneratorReader(chunks(size, block)), sink)
    out = NullSink()
    with path.open("rb") as source:
        envelope.decrypt_stream(ORG, source, out, DATA_TYPE)
    if out.count != size:
        raise RuntimeError(f"decrypt_stream returned {out.count} bytes, expected {size}")


def measure(envelope: Any, size: int) -> dict[str, Any]:
    """Stream ``size`` bytes through and back; RSS baseline, peak and growth in KiB."""
    with tempfile.TemporaryDirectory(prefix="orgkms-bench-") as folder:
        _stream_both_ways(envelope, 4 * MIB, folder)  # warm-up: clients, data key, imports
        _, result = measure_rss(lambda: _stream_both_ways(envelope, size, folder))
    return {"bytes": size, **result}


def measure_rss(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` once; its RSS baseline, peak, growth and what stays after, in KiB."""
    gc.collect()
    exact = _reset_peak()
    baseline = _status_kib("VmRSS")
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    sampled = sampler.stop()
    peak = max(sampled, _status_kib("VmHWM")) if exact else sampled
    gc.collect()
    return value, {
        "seconds": seconds,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "sampled_peak_kib": sampled,
        "growth_kib": peak - baseline,
        "kept_kib": _status_kib("VmRSS") - baseline,
        "method": "VmHWM after reset" if exact else "VmRSS sampled every 5 ms",
    }


def child(size: int) -> None:
    with bench_stack() as bench:
        result = measure(bench.envelope, size)
    print(CHILD_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, metavar="BYTES", required=True)
    child(parser.parse_args().child)
