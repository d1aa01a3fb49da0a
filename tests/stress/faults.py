"""Fault injection for the embedded stack, through botocore's event hooks.

A :class:`FaultInjector` is registered on botocore sessions (``before-call`` and ``after-call``
of every service). While armed it draws from a seeded RNG at every AWS call a handler makes and
may answer in place of the service (throttling, internal errors, conditional-check races),
raise a timeout before the request leaves (nothing happened) or after the answer came back (it
happened, the caller never learns), or kill the function (:class:`LambdaCrash`) between two
calls. :class:`CrashingRuntime` makes the embedded Lambda runtime treat such a kill as Lambda
does: the whole invocation fails, every message of its batch returns to its queue.
"""

import datetime as real_datetime
import json
import os
import random
import sys
import threading
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError


class LambdaCrash(BaseException):
    """The function's process dies here: no handler, no ``finally`` of the batch processor."""


@dataclass(frozen=True)
class Fault:
    """One kind of fault: where it may strike and what it does.

    ``kind``: ``error`` answers with ``code``/``status`` instead of the service; ``timeout``
    raises a read timeout before the request is sent; ``lost-answer`` lets the call happen and
    then raises a read timeout; ``crash`` kills the function before or after the call.
    """

    service: str
    kind: str
    code: str = ""
    status: int = 400
    operations: frozenset[str] = frozenset()  # empty: every operation of the service

    def applies(self, service: str, operation: str) -> bool:
        return service == self.service and (not self.operations or operation in self.operations)

    @property
    def label(self) -> str:
        return f"{self.service}:{self.code or self.kind}"


WRITES = frozenset({"UpdateItem", "PutItem", "DeleteItem"})

CONTROL_PLANE_FAULTS = (
    Fault("kms", "error", "ThrottlingException"),
    Fault("kms", "error", "KMSInternalException", 500),
    Fault("kms", "timeout"),
    Fault("kms", "lost-answer"),
    Fault("kms", "crash"),
    Fault("dynamodb", "error", "ConditionalCheckFailedException", operations=WRITES),
    Fault("dynamodb", "error", "ProvisionedThroughputExceededException"),
    Fault("dynamodb", "error", "InternalServerError", 500),
    Fault("dynamodb", "lost-answer", operations=WRITES),
    Fault("dynamodb", "crash"),
    Fault("eventbridge", "error", "InternalException", 500),
    Fault("eventbridge", "crash"),
)


class FaultInjector:
    """Draws a fault at a rate per AWS call from a seeded RNG, only while ``armed``."""

    def __init__(self, seed: int, rate: float, faults: tuple[Fault, ...]) -> None:
        self._rng = random.Random(seed)
        self.rate = rate
        self._faults = faults
        self.calls = 0
        self.injected: Counter[str] = Counter()
        self._active = 0  # handler invocations running now, in any thread
        # Kill the function at exactly this call (counted over ``kill_services``), once.
        self.kill_at: int | None = None
        self.kill_services: frozenset[str] = frozenset({"s3", "kms"})
        self.killed_at = ""
        self.kill_candidates = 0
        self._lock = threading.Lock()

    def install(self, session: botocore.session.Session) -> None:
        session.register("before-call", self._before_call, unique_id=f"faults-b-{id(self)}")
        session.register("after-call", self._after_call, unique_id=f"faults-a-{id(self)}")

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Faults may strike while this block runs (a handler invocation)."""
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def _draw(self, service: str, operation: str) -> Fault | None:
        if not self._active or not _called_by_the_product():
            return None
        with self._lock:
            self.calls += 1
            if service in self.kill_services:
                self.kill_candidates += 1
            if self.kill_at is not None and service in self.kill_services:
                self.kill_at -= 1
                if self.kill_at == 0:
                    self.kill_at, self.killed_at = None, f"{service}.{operation}"
                    return Fault(service, "crash")
            if self._rng.random() >= self.rate:
                return None
        candidates = [f for f in self._faults if f.applies(service, operation)]
        return self._rng.choice(candidates) if candidates else None

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        service, operation = model.service_model.service_id.hyphenize(), model.name
        fault = self._draw(service, operation)
        if fault is None:
            return None
        after = fault.kind == "lost-answer" or (fault.kind == "crash" and self._rng.random() < 0.5)
        if after:
            context[_PENDING] = fault
            return None
        self.injected[f"{fault.label} ({operation})"] += 1
        if fault.kind == "crash":
            raise LambdaCrash(f"function killed before {service}.{operation}")
        if fault.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=f"https://{service}.emulated/{operation}")
        response = AWSResponse(f"https://{service}.emulated", fault.status, {}, None)
        parsed = {
            "Error": {"Code": fault.code, "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": fault.status, "HTTPHeaders": {}},
        }
        return response, parsed

    def _after_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        fault = context.pop(_PENDING, None)
        if fault is None:
            return
        operation = model.name
        self.injected[f"{fault.label} after ({operation})"] += 1
        if fault.kind == "crash":
            raise LambdaCrash(f"function killed after {model.service_model.service_id}.{operation}")
        raise ReadTimeoutError(endpoint_url=f"https://emulated/{operation}")


_PENDING = "orgkms-stress-fault-after-call"
_PRODUCT = (f"{os.sep}layers{os.sep}orgkms{os.sep}", f"{os.sep}functions{os.sep}")
_EMULATOR = f"{os.sep}layers{os.sep}orgkms{os.sep}local{os.sep}"


def _called_by_the_product() -> bool:
    """Is this AWS call made by orgkms's own code (a handler, the library), not by the emulator
    (Step Functions' interpreter invoking a step) nor by the test?"""
    frame = sys._getframe(3)
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in _PRODUCT) and _EMULATOR not in name:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextmanager
def faulty_sessions(injector: FaultInjector) -> Iterator[None]:
    """Every botocore session made meanwhile (boto3's and the envelope's own, so every client a
    handler builds) carries the injector's hooks."""
    original = botocore.session.Session

    class FaultySession(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            injector.install(self)

    botocore.session.Session = FaultySession  # type: ignore[misc]
    try:
        yield
    finally:
        botocore.session.Session = original  # type: ignore[misc]


class CrashingRuntime:
    """Wraps the embedded runtime's ``invoke``: arms the injector while a handler runs and turns a
    :class:`LambdaCrash` into a failed invocation, logged as Lambda logs it."""

    def __init__(self, runtime: Any, injector: FaultInjector) -> None:
        self._runtime = runtime
        self._invoke = runtime.invoke
        self._injector = injector
        self.crashes: list[dict[str, Any]] = []

    def __enter__(self) -> "CrashingRuntime":
        self._runtime.invoke = self.invoke
        return self

    def __exit__(self, *exc: object) -> None:
        self._runtime.invoke = self._invoke

    def invoke(self, name_or_arn: str, payload: Any) -> tuple[Any, bool]:
        try:
            with self._injector.armed():
                return self._invoke(name_or_arn, payload)  # type: ignore[no-any-return]
        except LambdaCrash as crash:
            event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
            records = event.get("Records", []) if isinstance(event, dict) else []
            bodies = [r.get("body", "") for r in records]
            self.crashes.append({"reason": str(crash), "bodies": bodies})
            return {"errorType": "Runtime.ExitError", "errorMessage": str(crash)}, True


@contextmanager
def time_passes(seconds: float, *clock_owners: Any) -> Iterator[None]:
    """Run as if ``seconds`` later: for the registry's lease clock of ``clock_owners`` and for
    Powertools' idempotency records (as a redrive from the DLQ an hour later would be)."""
    from aws_lambda_powertools.utilities.idempotency import base
    from aws_lambda_powertools.utilities.idempotency.persistence import (
        base as persistence_base,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord, dynamodb

    class Later(real_datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return real_datetime.datetime.now(tz) + real_datetime.timedelta(seconds=seconds)

    shifted = types.SimpleNamespace(**{**vars(real_datetime), "datetime": Later})
    modules = (base, persistence_base, datarecord, dynamodb)
    saved_clocks = [owner._clock for owner in clock_owners]
    for owner, clock in zip(clock_owners, saved_clocks, strict=True):
        owner._clock = lambda clock=clock: clock() + seconds
    for module in modules:
        module.dt = shifted  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in modules:
            module.dt = real_datetime  # type: ignore[attr-defined]
        for owner, clock in zip(clock_owners, saved_clocks, strict=True):
            owner._clock = clock
