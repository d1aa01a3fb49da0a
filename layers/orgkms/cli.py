"""The ``orgkms`` command.

Every command reads resource names from the stack's Outputs (``--stack-name``, default
``orgkms``) through ``--endpoint-url`` or ``AWS_ENDPOINT_URL`` when given. Errors are one line on
stderr with a non-zero exit status and nothing on stdout.
"""

import argparse
import ipaddress
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from orgkms import cli_keys
from orgkms.config import DEFAULT_STACK_NAME
from orgkms.errors import DecryptionRefused, OrgKmsError
from orgkms.observability import SERVICE

EXIT_ERROR = 1  # argparse uses 2 for usage errors
EXIT_REFUSED = 3  # a ciphertext refused for the organization asked for


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.getLogger("aws_encryption_sdk").setLevel(logging.CRITICAL + 1)
    # A command answers in one line; the library's own log records (meant for Lambda's log
    # groups) stay out of the terminal. The embedded stack's commands keep them.
    # (Powertools gives each module's logger a level of its own, so the records are stopped
    # where they all meet: the service logger's handlers.)
    library = logging.getLogger(SERVICE)
    saved = library.handlers, library.propagate
    if args.command not in ("demo", "local"):
        library.handlers, library.propagate = [logging.NullHandler()], False
    try:
        _apply_endpoint(args.endpoint_url)
        result: int = args.func(args)
        return result
    except DecryptionRefused as err:
        return _fail(str(err), EXIT_REFUSED)
    except OrgKmsError as err:
        return _fail(str(err), EXIT_ERROR)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        return _fail(str(err), EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        return _fail(f"{type(err).__name__}: {err}", EXIT_ERROR)
    finally:
        library.handlers, library.propagate = saved


# ---------------------------------------------------------------------------- commands


def cmd_encrypt(args: argparse.Namespace) -> int:
    envelope = _platform(args).envelope
    with _input(args.input) as source, _output(args.output) as sink:
        envelope.encrypt_stream(args.org, args.type, source, sink)
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    envelope = _platform(args).envelope
    if args.output not in (None, "-"):
        _decrypt_to_file(envelope, args)
        return 0
    with _input(args.input) as source:
        ciphertext = source.read()
    sys.stdout.buffer.write(envelope.decrypt(args.org, ciphertext, args.type))
    sys.stdout.buffer.flush()
    return 0


def cmd_put(args: argparse.Namespace) -> int:
    path = Path(args.file)
    name = args.name or path.name
    with path.open("rb") as source:
        stored = _platform(args).store.put(args.org, args.type, name, source, path.stat().st_size)
    _emit(
        args,
        {
            "organizationId": stored.org_id,
            "name": stored.name,
            "s3Key": stored.s3_key,
            "keyArn": stored.key_arn,
            "bytes": stored.size,
        },
        f"stored {stored.s3_key} ({stored.size} bytes) under {stored.key_arn}",
    )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    store = _platform(args).store
    if args.output not in (None, "-"):
        store.get_to_file(args.org, args.name, args.output, args.type)
        return 0
    import io

    buffer = io.BytesIO()
    store.get(args.org, args.name, buffer, args.type)
    sys.stdout.buffer.write(buffer.getvalue())
    sys.stdout.buffer.flush()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from orgkms.report import inventory

    platform = _platform(args)
    if args.org:
        records = [platform.lookup(args.org)]
        objects = platform.store.list(args.org)
    else:
        records = list(platform.registry.scan())
        objects = [obj for r in records for obj in platform.store.list(r.org_id)]
    rows = [entry.as_dict() for entry in inventory(records, objects)]
    if not args.org:
        _emit(args, rows, _table(rows))
        return 0
    document, text = rows[0], _table(rows)
    key_document, key_text = cli_keys.key_status(records[0])
    document.update(key_document)
    text += key_text
    checkpoint = platform.checkpoints.get(args.org) if platform.settings.migration_table else None
    if checkpoint is not None:
        document["migration"] = checkpoint.as_dict()
        text += (
            f"\nmigration: {checkpoint.status} {checkpoint.done} re-encrypted, "
            f"{checkpoint.skipped} already done, {checkpoint.failed} failed of "
            f"{checkpoint.total}; target {checkpoint.target_key_arn}"
        )
        if checkpoint.reason:
            text += f"\n  reason: {checkpoint.reason}"
        if checkpoint.noncurrent_under_old_keys:
            text += (
                f"\n  {checkpoint.noncurrent_under_old_keys} noncurrent object versions "
                "are still under an old key"
            )
    _emit(args, document, text)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Put a sample control-plane event (an EventBridge event as in events/) on the stack's bus."""
    from orgkms.models import control_plane_entry

    with _input(args.event) as source:
        try:
            event = json.loads(source.read())
            entry = control_plane_entry(event["detail-type"], event["detail"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{args.event}: expected an EventBridge event with detail-type and detail"
            ) from None
    platform = _platform(args)
    entry["EventBusName"] = platform.settings.event_bus_name
    response = platform.client("events").put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        raise ValueError(f"the bus refused the event: {response['Entries'][0].get('ErrorCode')}")
    _emit(
        args,
        {"eventId": response["Entries"][0]["EventId"]},
        f"sent {entry['DetailType']} to {entry['EventBusName']}",
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from orgkms.models import MigrationRequest

    fields = {
        "organizationId": args.org,
        "targetKeyArn": args.target_key,
        "reason": args.reason,
        "deletionWindowDays": args.deletion_window,
        "noncurrentVersions": args.noncurrent,
        "cacheDrainSeconds": args.cache_drain_seconds,
    }
    try:
        request = MigrationRequest.model_validate(
            {k: v for k, v in fields.items() if v is not None}
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ValueError(f"invalid migration request: {problems}") from None
    platform = _platform(args)
    execution = platform.start_migration(request)
    if not args.wait:
        _emit(
            args,
            {"organizationId": args.org, "execution": execution},
            f"migration of {args.org} started: {execution}",
        )
        return 0
    return _wait_for_migration(args, platform, execution)


def _wait_for_migration(args: argparse.Namespace, platform: Any, execution: str) -> int:
    import time

    sfn = platform.client("stepfunctions")
    started = time.monotonic()
    while True:
        status = sfn.describe_execution(executionArn=execution)["status"]
        checkpoint = platform.checkpoints.get(args.org)
        if checkpoint is not None and checkpoint.execution == execution:
            _progress(checkpoint, time.monotonic() - started)
        if status != "RUNNING":
            break
        time.sleep(0.5)
    sys.stderr.write("\n")
    checkpoint = platform.checkpoints.get(args.org)
    document = checkpoint.as_dict() if checkpoint else {"status": status}
    if status != "SUCCEEDED":
        reason = document.get("reason") or f"execution {status}"
        raise MigrationFailedError(f"migration of {args.org} failed: {reason}")
    _emit(
        args,
        document,
        f"migration of {args.org} completed: {document.get('done')} objects "
        f"re-encrypted, {document.get('skipped')} already done, now under "
        f"{document.get('targetKeyArn')}",
    )
    return 0


def _progress(checkpoint: Any, elapsed: float) -> None:
    seen = checkpoint.done + checkpoint.skipped + checkpoint.failed
    total = max(checkpoint.total, seen, 1)
    rate = checkpoint.done / elapsed if elapsed > 0 else 0.0
    eta = (total - seen) / rate if rate > 0 else 0.0
    width = 30
    filled = int(width * seen / total)
    line = (
        f"[{'#' * filled}{'.' * (width - filled)}] {seen}/{total} objects "
        f"{checkpoint.bytes / 2**20:.1f} MiB {rate:.1f} obj/s ETA {eta:.0f} s "
        f"({checkpoint.status.lower()})"
    )
    end = "\r" if sys.stderr.isatty() else "\n"
    sys.stderr.write(line + end)
    sys.stderr.flush()


class MigrationFailedError(OrgKmsError):
    """The re-key workflow ended without switching the organization."""


def cmd_demo(args: argparse.Namespace) -> int:
    from orgkms.demo import run_demo

    out = Path(args.out) if args.out else None
    return run_demo(Path(args.data) if args.data else None, args.stack_name, out)


def cmd_serve(args: argparse.Namespace) -> int:
    from orgkms.local.server import serve

    _require_loopback(args.host)
    return serve(args.host, args.port, args.stack_name)


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase an organization (or cancel its erasure); the receipt goes to stdout or --receipt."""
    from orgkms.erasure import ErasureService, validate_window

    if not args.confirm and not args.cancel and not args.plan:
        return _fail(f"erasing {args.org} destroys its keys: add --confirm (or --plan)", 2)
    if args.window is not None:
        validate_window(args.window)  # refused before the stack is even read
    platform = _platform(args)
    service = ErasureService.from_platform(platform)
    if args.plan:
        plan = service.plan(args.org).as_dict()
        _emit(args, plan, _plan_text(plan))
        return 0
    if args.cancel:
        result = service.cancel(args.org)
        keys = ", ".join(k["keyArn"] for k in result["keys"]) or "no key"
        _emit(args, result, f"erasure of {args.org} cancelled: {keys} enabled again")
        return 0
    receipt = service.erase(args.org, args.window or 30, args.force, args.reason or "")
    text = json.dumps(receipt, indent=2)
    if args.receipt:
        Path(args.receipt).write_text(text + "\n", encoding="utf-8")
    summary = (
        f"{args.org} erased: {receipt['objects']} objects ({receipt['bytes']} bytes, "
        f"{receipt['versions']} versions) deleted; "
        + "; ".join(
            f"{k['keyArn']} {k['action']} {k.get('deletionDate', '')}" for k in receipt["keys"]
        )
        + f"; {len(receipt['residue'])} residue; audit entry {receipt['auditEntry']['hash']}"
    )
    _emit(args, receipt, summary if args.receipt else text)
    return 0


def _plan_text(plan: dict[str, Any]) -> str:
    lines = [
        f"erasing {plan['organizationId']} would destroy {len(plan['keysToDestroy'])} key(s) and "
        f"delete {plan['objects']} objects ({plan['bytes']} bytes, {plan['versions']} versions)"
    ]
    lines += [f"  destroy {arn}" for arn in plan["keysToDestroy"]]
    lines += [f"  keep    {k['keyArn']}: {k['why']}" for k in plan["keysKept"]]
    lines += [
        f"  residue {r['s3Key']} ({r['versionId']}) under {r['keyArn'] or 'no KMS key'}"
        for r in plan["residue"]
    ]
    return "\n".join(lines)


def cmd_audit(args: argparse.Namespace) -> int:
    """Verify an org's audit trail, or merge it with CloudTrail's events for its keys."""
    from datetime import UTC, datetime

    from orgkms.audit import AuditError
    from orgkms.cloudtrail import audit_range, audit_report

    end = datetime.fromisoformat(args.end) if args.end else None
    start, end = audit_range(args.days, end, datetime.now(UTC))
    platform = _platform(args)
    trail = platform.audit
    if trail is None:
        raise AuditError("this stack has no audit table")
    if args.verify:
        verified = trail.verify(args.org)
        _emit(
            args,
            verified.as_dict(),
            f"audit trail of {args.org}: {verified.entries} entries, chain intact, "
            f"head {verified.head_hash}",
        )
        return 0
    record = platform.lookup(args.org)
    key_arns = list(
        dict.fromkeys([record.encrypt_key_arn, *record.decrypt_key_arns, *trail.key_arns(args.org)])
    )
    report = audit_report(
        args.org,
        trail,
        platform.client("cloudtrail"),
        [a for a in key_arns if a],
        start,
        end,
        library=platform.envelope.counters(args.org),
    )
    _emit(args, report, _audit_text(report))
    return 0


def _audit_text(report: dict[str, Any]) -> str:
    ct, lib = report["cloudTrail"], report["library"]
    lines = [f"audit of {report['organizationId']} from {report['start']} to {report['end']}"]
    lines += [f"  {e['at']}  #{e['sequence']:<4} {e['action']}" for e in report["auditTrail"]]
    lines.append(
        f"  CloudTrail ({len(report['keyArns'])} key(s), {ct['lookupRequests']} lookups): "
        f"Encrypt {ct['Encrypt']}, Decrypt {ct['Decrypt']}, GenerateDataKey "
        f"{ct['GenerateDataKey']}, other {ct['otherEvents']}, errors {ct['errors']}, "
        f"access denied {ct['accessDenied']}"
    )
    lines.append(
        f"  library ({lib['scope']}): {lib['operations']} operations, {lib['cacheHits']} cache "
        f"hits, {lib['kmsCalls']} KMS calls, {lib['refusals']} refusals"
    )
    lines.append(f"  note: {report['note']}")
    return "\n".join(lines)


def cmd_blast_radius(args: argparse.Namespace) -> int:
    """What a leaked key exposes: orgs, objects, bytes, and the cache's exposure bound."""
    from orgkms.report import blast_radius, breach_comparison, select_exposures

    platform = _platform(args)
    records = list(platform.registry.scan())
    objects = [o for r in records for o in platform.store.list(r.org_id)]
    exposures = blast_radius(records, objects)
    if args.org:
        platform.lookup(args.org)
    selected = select_exposures(exposures, records, args.key, args.org)
    max_age = platform.settings.cache.max_age_seconds
    comparison = breach_comparison(exposures, platform.settings.shared_key_arn, args.value_per_org)
    document = {
        "exposures": [
            {**e.as_dict(), "sharedKey": e.key_arn == platform.settings.shared_key_arn}
            for e in selected
        ],
        "cacheExposureSeconds": max_age,
        "comparison": comparison,
    }
    if args.chart:
        from orgkms.chart import write_chart

        write_chart(Path(args.chart), _chart_rows(comparison, exposures, platform), "Blast radius")
        document["chart"] = args.chart
    _emit(args, document, _blast_text(document, args.value_per_org))
    return 0


def _chart_rows(comparison: dict[str, Any], exposures: Any, platform: Any) -> list[dict[str, Any]]:
    shared = platform.settings.shared_key_arn
    rows = [
        {"label": "all orgs on one shared key", "shared": True, **comparison["allOrgsOnSharedKey"]},
        {"label": "shared key today", "shared": True, **comparison["sharedKeyNow"]},
    ]
    for exposure in sorted(exposures.values(), key=lambda e: -e.bytes):
        if exposure.key_arn != shared and len(rows) < 12:
            rows.append(
                {
                    "label": f"org key of {', '.join(exposure.orgs)}"[:34],
                    "shared": False,
                    "orgs": len(exposure.orgs),
                    "objects": exposure.objects,
                    "bytes": exposure.bytes,
                }
            )
    return rows


def _blast_text(document: dict[str, Any], value_per_org: float | None) -> str:
    lines = [f"{'key':<60} {'orgs':>5} {'objects':>8} {'bytes':>12}  organizations"]
    for e in document["exposures"]:
        lines.append(
            f"{e['keyArn']:<60} {len(e['organizations']):>5} {e['objects']:>8} "
            f"{e['bytes']:>12}  {', '.join(e['organizations'])}"
        )
    lines.append(
        f"cached data keys extend exposure by up to {document['cacheExposureSeconds']:g} s "
        "after a key is disabled"
    )
    c = document["comparison"]
    for label, name in (
        ("all orgs on one shared key", "allOrgsOnSharedKey"),
        ("shared key today", "sharedKeyNow"),
        ("largest org key", "largestOrgKey"),
    ):
        row = c[name]
        value = f", value {row['value']:,.0f}" if "value" in row else ""
        lines.append(
            f"breach of {label}: {row['orgs']} orgs, {row['objects']} objects, "
            f"{row['bytes']} bytes{value}"
        )
    if value_per_org is not None:
        lines.append(f"value protected by per-org keys: {c['valueProtected']:,.0f}")
    if "chart" in document:
        lines.append(f"chart written to {document['chart']}")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    """Write an organization's objects as stored plus a manifest."""
    from orgkms.export import export_org

    platform = _platform(args)
    result = export_org(
        args.org,
        Path(args.dir),
        platform.envelope,
        platform.client("s3"),
        platform.settings.data_bucket,
        platform.audit,
    )
    manifest = result.manifest
    _emit(
        args,
        manifest,
        f"exported {len(manifest['objects'])} objects of {args.org} to {args.dir} "
        f"(keys: {', '.join(manifest['keyArns']) or 'none'}); manifest.json lists their SHA-256",
    )
    return 0


# ---------------------------------------------------------------------------- plumbing


def _platform(args: argparse.Namespace) -> Any:
    from orgkms.aws import Platform

    return Platform.from_stack(args.stack_name)


def _apply_endpoint(endpoint: str | None) -> None:
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    host = urlparse(endpoint).hostname or ""
    if _is_loopback(host) and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # The embedded emulator accepts any credentials; never send real ones to it.
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")  # noqa: S106
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_loopback(host: str) -> None:
    if not _is_loopback(host):
        raise ValueError(f"refusing to serve on {host}: the emulator listens on loopback only")


class _input:
    def __init__(self, name: str | None) -> None:
        self._name = name
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self._name in (None, "-"):
            return sys.stdin.buffer
        self._handle = open(self._name, "rb")
        return self._handle

    def __exit__(self, *exc: object) -> None:
        if self._handle:
            self._handle.close()


class _output:
    """stdout, or a file written through a fresh temporary file and renamed only on success.

    The temporary file is created exclusively (no planted name or link is followed) with mode
    0600 beside the target, and removed whatever goes wrong, the final rename included.
    """

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._tmp: str | None = None
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self._name in (None, "-"):
            return sys.stdout.buffer
        folder = os.path.dirname(os.path.abspath(self._name or "")) or "."
        fd, self._tmp = tempfile.mkstemp(dir=folder, prefix=".orgkms-", suffix=".partial")
        self._handle = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._handle is None or self._tmp is None:
            sys.stdout.buffer.flush()
            return
        self._handle.close()
        try:
            if exc_type is None:
                os.replace(self._tmp, self._name or "")
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)


def _decrypt_to_file(envelope: Any, args: argparse.Namespace) -> None:
    with _input(args.input) as source, _output(args.output) as sink:
        envelope.decrypt_stream(args.org, source, sink, args.type)


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    sys.stdout.write((json.dumps(document, indent=2) if args.json else text) + "\n")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no organizations registered"
    columns = ["organizationId", "status", "keyMode", "region", "objects", "bytes", "keyArn"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"orgkms: error: {message.splitlines()[0] if message else 'failed'}\n")
    return code


def _common_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every command takes, before or after the command name.

    Subcommands get them without defaults, so a value given before the command name survives.
    """

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--endpoint-url", default=default(None), help="AWS endpoint (default: $AWS_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--stack-name",
        default=default(DEFAULT_STACK_NAME),
        help=f"the stack whose Outputs name the resources (default: {DEFAULT_STACK_NAME})",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, defaults=False)

    parser = argparse.ArgumentParser(
        prog="orgkms", description="Per-organization KMS keys and envelope encryption."
    )
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> Any:
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    enc = add("encrypt", cmd_encrypt, "encrypt a file or stdin for an organization")
    enc.add_argument("--org", required=True)
    enc.add_argument("--type", required=True, help="data type, bound into the context")
    enc.add_argument("input", nargs="?", default="-")
    enc.add_argument("-o", "--output", default="-")

    dec = add("decrypt", cmd_decrypt, "decrypt an organization's message")
    dec.add_argument("--org", required=True)
    dec.add_argument("--type", help="also require this data type")
    dec.add_argument("input", nargs="?", default="-")
    dec.add_argument("-o", "--output", default="-")

    put = add("put", cmd_put, "encrypt a file and store it under orgs/<org>/")
    put.add_argument("--org", required=True)
    put.add_argument("--type", required=True)
    put.add_argument("file")
    put.add_argument("--name", help="object name (default: the file's name)")

    get = add("get", cmd_get, "fetch and decrypt an organization's object")
    get.add_argument("--org", required=True)
    get.add_argument("name")
    get.add_argument("--type", help="also require this data type")
    get.add_argument("-o", "--output", default="-")

    status = add("status", cmd_status, "organizations, their keys and data")
    status.add_argument("org", nargs="?")

    send = add("send", cmd_send, "put a control-plane event (a file as in events/) on the bus")
    send.add_argument("event", help="EventBridge event JSON, or - for stdin")

    migrate = add("migrate", cmd_migrate, "move an organization's data onto its own or a given key")
    migrate.add_argument("org")
    migrate.add_argument("--target-key", help="key ARN to move to (default: the org's own key)")
    migrate.add_argument("--reason")
    migrate.add_argument(
        "--deletion-window",
        type=int,
        help="days before an old org key is deleted, 7-30 (default 30)",
    )
    migrate.add_argument(
        "--noncurrent",
        choices=["report", "delete"],
        help="noncurrent object versions under old keys (default: report)",
    )
    migrate.add_argument(
        "--cache-drain-seconds",
        type=int,
        help="wait before re-encrypting (default: the data-key cache's max age)",
    )
    migrate.add_argument("--wait", action="store_true", help="show progress until it ends")

    cli_keys.register(add)
    erase = add("erase", cmd_erase, "erase an organization: destroy its keys, delete its data")
    erase.add_argument("org")
    erase.add_argument("--confirm", action="store_true", help="yes, erase it")
    erase.add_argument("--window", type=int, help="days before the keys are deleted, 7-30 (30)")
    erase.add_argument("--force", action="store_true", help="erase despite residue (listed)")
    erase.add_argument("--reason", help="recorded in the receipt and the audit trail")
    erase.add_argument("--receipt", help="write the receipt JSON here")
    erase.add_argument(
        "--plan", action="store_true", help="show what would be erased, change nothing"
    )
    erase.add_argument("--cancel", action="store_true", help="cancel within the window")

    audit = add("audit", cmd_audit, "an organization's audit trail and key usage (CloudTrail)")
    audit.add_argument("org")
    audit.add_argument("--days", type=int, default=30, help="1-90 (default 30)")
    audit.add_argument("--end", help="end of the range, ISO 8601 (default: now)")
    audit.add_argument("--verify", action="store_true", help="check the hash chain only")

    blast = add("blast-radius", cmd_blast_radius, "what a leaked key exposes")
    which = blast.add_mutually_exclusive_group()
    which.add_argument("--key", help="a key ARN")
    which.add_argument("--org", help="an organization (its keys)")
    blast.add_argument("--value-per-org", type=float, help="value of one org's data, for the CISO")
    blast.add_argument("--chart", help="write an SVG chart comparing shared and per-org keys")

    export = add("export", cmd_export, "write an organization's objects as stored + a manifest")
    export.add_argument("org")
    export.add_argument("dir")

    demo = add("demo", cmd_demo, "play the control plane on the embedded stack")
    demo.add_argument("--data", help="folder of files to store (default: some project files)")
    demo.add_argument("--out", help="where the chart and receipt go (default: ./demo-output)")

    local = sub.add_parser("local", help="the embedded stack")
    local_sub = local.add_subparsers(dest="local_command", required=True)
    serve = local_sub.add_parser("serve", parents=[common], help="serve the stack on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4566)
    serve.set_defaults(func=cmd_serve)
    return parser


if __name__ == "__main__":
    sys.exit(main())
