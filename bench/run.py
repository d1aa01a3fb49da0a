"""Run every orgkms benchmark once and print one table: figures, goals, PASS/MISS.

Usage::

    .venv/bin/python bench/run.py [--quick] [--json FILE] [--only NAME ...]

1. records    1 KiB records round trip: ours vs plain Encryption SDK vs raw AES-GCM (records.py)
2. streaming  encrypt_stream + decrypt_stream vs raw AES-GCM in 64 KiB chunks (streaming.py)
3. memory     peak RSS growth streaming 1 GiB through and back, in a child process (memory.py)
4. kms        KMS calls for many records of one organization vs KMS per record (kms_calls.py)
5. imports    handler module import time vs ``import boto3``, fresh interpreters (imports.py)
6. migration  the re-key workflow vs a naive per-object loop with KMS 10 ms slower; a rerun;
              peak RSS growth re-keying one 1 GiB object, in child processes (migration.py)
7. customer   the same records on a customer's key (another emulated account) vs an org key
              (customer_keys.py)
8. blast      blast radius over 1,000 and 10,000 orgs' metadata (100 objects each); an audit of
              5,000 CloudTrail events against LookupEvents' rate (blast.py, no AWS)
9. many       10,000 orgs created by events and used: per-event cost at 10,000 vs 10 orgs; the
              modelled peak KMS request rate at 1,000 encrypts/s (many_orgs.py)

Benchmarks 1, 2, 4, 6's first part and 7 share one embedded stack (template.yaml inside moto, in
this process); 3, 5 and 6's second part run child interpreters. Nothing uses the network.
This is a measurement, not a test: a MISS is reported, never raised; the exit status is 0
whenever every benchmark ran.
"""

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import blast
import customer_keys
import imports
import kms_calls
import many_orgs
import memory
import migration
import records
import streaming
from benchlib import MIB, BenchStack, Report, bench_stack, render_table

BENCHMARKS = (
    "records",
    "streaming",
    "memory",
    "kms",
    "imports",
    "migration",
    "customer",
    "blast",
    "many",
)
# These share one embedded stack in this process; the others start interpreters of their own.
IN_STACK = {"records", "streaming", "kms", "migration", "customer", "many"}


@dataclass(frozen=True)
class Sizes:
    records: int
    stream_bytes: int
    memory_bytes: int
    kms_records: int
    import_runs: int
    migration_objects: int
    migration_big_bytes: int
    customer_records: int
    blast_orgs: int
    audit_events: int
    orgs: int


FULL = Sizes(
    2_000, 64 * MIB, 1024 * MIB, 10_000, 5, 1_000, 1024 * MIB, 1_000, 10_000, 5_000, 10_000
)
QUICK = Sizes(300, 16 * MIB, 128 * MIB, 2_000, 5, 200, 128 * MIB, 300, 5_000, 5_000, 1_000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about two minutes)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        default=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only these: {', '.join(BENCHMARKS)}",
    )
    return parser.parse_args(argv)


def run_all(sizes: Sizes, only: list[str]) -> Report:
    """Every selected benchmark, in table order, into one report."""
    steps: dict[str, Callable[[BenchStack], Report]] = {
        "records": lambda bench: records.run(bench, sizes.records),
        "streaming": lambda bench: streaming.run(bench, sizes.stream_bytes),
        "memory": lambda _: memory.run(sizes.memory_bytes),
        "kms": lambda bench: kms_calls.run(bench, sizes.kms_records),
        "imports": lambda _: imports.run(sizes.import_runs),
        "migration": lambda bench: migration.run(
            bench, sizes.migration_objects, sizes.migration_big_bytes
        ),
        "customer": lambda bench: customer_keys.run(bench, sizes.customer_records),
        "blast": lambda _: blast.run(sizes.blast_orgs, sizes.audit_events),
        "many": lambda bench: many_orgs.run(bench, sizes.orgs),
    }
    report = Report()
    needs_stack = bool(IN_STACK & set(only))
    with bench_stack() if needs_stack else contextlib.nullcontext() as bench:
        for name in BENCHMARKS:
            if name in only:
                _step(name, report, lambda fn=steps[name]: fn(bench))
    return report


def _step(name: str, report: Report, fn: Callable[[], Report]) -> None:
    print(f"  running {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    report.extend(fn())
    report.details.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode, sizes = ("quick", QUICK) if args.quick else ("full", FULL)
    start = time.perf_counter()
    report = run_all(sizes, args.only)
    elapsed = time.perf_counter() - start
    print(
        f"orgkms benchmarks ({mode}) - Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, embedded emulator in-process"
    )
    print(render_table(report.figures))
    for note in report.notes:
        print(note)
    missed = sum(f.result == "MISS" for f in report.figures)
    goals = sum(f.goal is not None for f in report.figures)
    print(f"{goals - missed} of {goals} goals met; {elapsed:.1f} s in all")
    if args.json:
        _write_json(args.json, mode, sizes, report, elapsed)
    return 0


def _write_json(path: Path, mode: str, sizes: Sizes, report: Report, elapsed: float) -> None:
    document = {
        "mode": mode,
        "sizes": sizes.__dict__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "seconds": round(elapsed, 2),
        "figures": [f.as_dict() for f in report.figures],
        "details": report.details,
        "notes": report.notes,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
