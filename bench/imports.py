"""Benchmark 5: cold import time of the org_lifecycle handler module against ``import boto3``.

Each measurement is a fresh interpreter (``python -c``, this virtualenv's Python) that times, with
``time.perf_counter`` around the import only (interpreter start-up excluded), either
``import boto3`` or loading ``functions/org_lifecycle/app.py`` from its path with importlib, as
the Lambda runtime does. Five runs each, alternating, after one untimed run of each to warm the
file cache; the medians count. Environment: AWS_DEFAULT_REGION=us-east-1 and
PYTHONDONTWRITEBYTECODE=1: nothing is written into the repository, so the handler and orgkms
sources are compiled on every run (as on Lambda, whose code folder is read-only), while the
installed packages load from the .pyc files pip compiled.

When the ratio misses its goal, more runs under ``-X importtime`` (which adds overhead of its own)
find where the time goes: the handler's slowest direct imports (cumulative), and the packages it
loads beyond what ``import boto3`` loads (self time summed over their modules).
"""

import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from benchlib import Figure, Report

ROOT = Path(__file__).resolve().parents[1]
HANDLER = ROOT / "functions" / "org_lifecycle" / "app.py"
TIMER = "import time; t = time.perf_counter(); {body}; print(time.perf_counter() - t)"
BOTO3 = TIMER.format(body="import boto3")
LOAD = (
    "import importlib.util as u; s = u.spec_from_file_location('app', {path!r}); "
    "m = u.module_from_spec(s); s.loader.exec_module(m)"
)
HANDLER_CODE = TIMER.format(body=LOAD.format(path=str(HANDLER)))
# What every run imports before the handler (site, the timer's own imports): left out of the
# diagnosis.
BARE = TIMER.format(body="import importlib.util")
GOAL = 1.5
TOP = 5


def run(runs: int) -> Report:
    for code in (BOTO3, HANDLER_CODE):
        _time_once(code)
    boto3_s, handler_s = [], []
    for _ in range(runs):
        boto3_s.append(_time_once(BOTO3))
        handler_s.append(_time_once(HANDLER_CODE))
    boto3_med, handler_med = statistics.median(boto3_s), statistics.median(handler_s)
    ratio = handler_med / boto3_med
    figures = [
        Figure("5", f"import boto3 (median of {runs})", boto3_med * 1e3, "ms"),
        Figure("5", f"import org_lifecycle handler (median of {runs})", handler_med * 1e3, "ms"),
        Figure("5", "handler / boto3 (import time)", ratio, "x", goal=GOAL),
    ]
    report = Report(
        figures=figures, details={"imports": {"boto3_s": boto3_s, "handler_s": handler_s}}
    )
    if ratio > GOAL:
        report.notes += diagnose()
    return report


def _env() -> dict[str, str]:
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import run failed: {done.stderr.strip().splitlines()[-1:]}")
    return done


def _time_once(code: str) -> float:
    return float(_python("-c", code).stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- diagnosis


def diagnose() -> list[str]:
    """Where the handler's import time goes, from ``-X importtime`` runs (which add overhead)."""
    startup = _modules(BARE)
    rows = [r for r in _importtime_rows(_importtime(HANDLER_CODE)) if r[3] not in startup]
    direct = sorted((r for r in rows if r[2] == 0), key=lambda r: -r[1])[:TOP]
    lines = [f"5: handler import, top {TOP} slowest direct imports (cumulative, -X importtime):"]
    lines += [f"     {cum / 1e3:8.1f} ms  {name}" for _, cum, _, name in direct]
    beyond = _modules(BOTO3) | startup
    added = [r for r in rows if r[3] not in beyond]
    total = sum(r[0] for r in added) / 1e3
    lines.append(
        f"5: handler import, beyond what `import boto3` loads ({len(added)} modules, "
        f"{total:.0f} ms): top {TOP} packages by self time summed over their modules:"
    )
    lines += [f"     {us / 1e3:8.1f} ms  {name}" for name, us in _by_package(added)[:TOP]]
    return lines


def _importtime(code: str) -> str:
    return _python("-X", "importtime", "-c", code).stderr


def _modules(code: str) -> set[str]:
    return {row[3] for row in _importtime_rows(_importtime(code))}


def _by_package(rows: list[tuple[int, int, int, str]]) -> list[tuple[str, int]]:
    totals: dict[str, int] = defaultdict(int)
    for self_us, _, _, name in rows:
        totals[name.split(".")[0]] += self_us
    return sorted(totals.items(), key=lambda item: -item[1])


def _importtime_rows(stderr: str) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, nesting depth, module) for every ``import time:`` line."""
    rows = []
    pattern = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in stderr.splitlines():
        match = pattern.match(line)
        if match:
            self_us, cum_us, indent, name = match.groups()
            rows.append((int(self_us), int(cum_us), (len(indent) - 1) // 2, name))
    return rows
