"""``orgkms byok ...``, ``orgkms rotate`` and ``orgkms key-compromised``: key control commands."""

import argparse
import json
from collections.abc import Callable
from typing import Any

from orgkms.errors import OrgKmsError

AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], Any]


def register(add: AddCommand) -> None:
    """Add the key-control commands to the ``orgkms`` parser."""
    request = add("byok", cmd_byok, "customer-managed keys: request, check, policy")
    request.add_argument("action", choices=["request", "check", "policy"])
    request.add_argument("org")
    request.add_argument("key_arn", nargs="?", help="request: the customer's key or alias ARN")
    request.add_argument("--wait", action="store_true", help="request: follow the re-key")

    rotate = add("rotate", cmd_rotate, "rotate (or confirm rotation of) an organization's key")
    rotate.add_argument("org")
    rotate.add_argument("--on-demand", action="store_true", help="rotate now (KMS allows 10)")
    rotate.add_argument(
        "--rekey", action="store_true", help="move existing data onto a new org key too"
    )

    compromised = add(
        "key-compromised", cmd_key_compromised, "replace a compromised org key and re-key its data"
    )
    compromised.add_argument("org")
    compromised.add_argument("--reason")
    compromised.add_argument(
        "--deletion-window", type=int, default=7, help="days before the old key is deleted"
    )
    compromised.add_argument(
        "--keep-old-versions",
        action="store_true",
        help="keep noncurrent versions under the old key (it is then only disabled)",
    )
    compromised.add_argument("--wait", action="store_true", help="follow the re-key")


def key_status(record: Any) -> tuple[dict[str, Any], str]:
    """What ``orgkms status ORG`` says about the key's health, BYOK and rotation."""
    document: dict[str, Any] = {"keyHealth": record.key_health}
    lines = []
    if record.key_health == "UNAVAILABLE":
        document["keyHealthReason"] = record.key_health_reason
        lines.append(
            f"key: UNAVAILABLE since {_day(record.key_health_since)} ({record.key_health_reason})"
            f"; encrypt and decrypt are refused. Once the key is back: orgkms byok check "
            f"{record.org_id}"
        )
    if record.byok_status:
        document["byok"] = {"status": record.byok_status, "reason": record.byok_reason}
        line = f"BYOK: {record.byok_status}"
        if record.byok_status == "REJECTED":
            line += (
                f" - {record.byok_reason}. The key policy statements to add: "
                f"orgkms byok policy {record.org_id}"
            )
        lines.append(line)
    if record.next_rotation_at:
        document["rotation"] = {
            "periodDays": record.rotation_period_days,
            "nextDue": _day(record.next_rotation_at),
            "last": record.last_rotation,
            "lastAt": _day(record.last_rotated_at) if record.last_rotated_at else "",
        }
        last = f", last: {record.last_rotation} on {_day(record.last_rotated_at)}"
        lines.append(
            f"rotation: every {record.rotation_period_days} days, next due "
            f"{_day(record.next_rotation_at)}" + (last if record.last_rotated_at else "")
        )
    return document, "".join(f"\n{line}" for line in lines)


def _day(epoch: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def cmd_byok(args: argparse.Namespace) -> int:
    from orgkms.cli import _emit, _platform
    from orgkms.customer_keys import ByokRejected
    from orgkms.lifecycle import customer_key_service

    platform = _platform(args)
    if args.action == "policy":
        statements = customer_key_service(platform).policy_statements(args.org)
        text = json.dumps(statements, indent=2)
        _emit(args, statements, f"Add these statements to your key's policy:\n{text}")
        return 0
    if args.action == "check":
        service = customer_key_service(platform, platform.publisher)
        healthy, message = service.check(args.org)
        if not healthy:
            raise OrgKmsError(f"key unavailable for {args.org!r}: {message}")
        _emit(args, {"organizationId": args.org, "healthy": True}, message)
        return 0
    if not args.key_arn:
        raise ValueError("byok request needs the customer's key ARN")
    service = customer_key_service(platform, platform.publisher, platform.start_migration)
    try:
        execution = service.request(args.org, args.key_arn)
    except ByokRejected as rejected:
        raise OrgKmsError(f"BYOK rejected for {args.org!r}: {rejected}") from None
    if not execution:
        _emit(args, {"organizationId": args.org}, f"{args.org} already uses {args.key_arn}")
        return 0
    return _started(args, platform, execution, f"key accepted; moving {args.org}'s data onto it")


def cmd_rotate(args: argparse.Namespace) -> int:
    from orgkms.cli import _emit, _platform
    from orgkms.rotation import RotationService

    platform = _platform(args)
    service = RotationService(
        platform.registry,
        lambda region: platform.client("kms", region),
        platform.start_migration,
        platform_account=platform.account[0],
        audit=platform.audit,
    )
    result = service.rotate(args.org, on_demand=args.on_demand, rekey=args.rekey)
    assert result is not None  # only scheduled rotations are skipped
    document = result.model_dump(by_alias=True, exclude_none=True)
    _emit(args, document, f"{args.org}: {result.action} ({result.key_arn})\n  {result.note}")
    return 0


def cmd_key_compromised(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from orgkms.cli import _platform
    from orgkms.models import MigrationRequest

    platform = _platform(args)
    if platform.lookup(args.org).key_mode == "customer":
        raise OrgKmsError(
            f"{args.org!r} uses its customer's key: the customer replaces it (byok request)"
        )
    try:
        request = MigrationRequest(
            organizationId=args.org,
            purpose="compromise",
            reason=args.reason or "key compromised",
            deletionWindowDays=args.deletion_window,
            noncurrentVersions="report" if args.keep_old_versions else "delete",
        )
    except ValidationError as err:
        raise ValueError(f"invalid request: {err.errors()[0]['msg']}") from None
    execution = platform.start_migration(request)
    return _started(args, platform, execution, f"new key for {args.org}; re-keying")


def _started(args: argparse.Namespace, platform: Any, execution: str, what: str) -> int:
    """A re-key was started: follow it (``--wait``) or say which execution runs it."""
    from orgkms.cli import _emit, _wait_for_migration

    if args.wait:
        return int(_wait_for_migration(args, platform, execution))
    _emit(args, {"organizationId": args.org, "execution": execution}, f"{what}: {execution}")
    return 0
