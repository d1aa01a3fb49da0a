"""The Lambda service of the embedded stack: handlers run in-process, SQS polled as Lambda does.

* :class:`InProcessLambda` replaces the invoke of moto's "simple" Lambda backend: an invocation of
  a function the template defines imports its handler module from the working tree (once, like a
  warm container), sets the function's environment from moto, and calls it with a context.
* :class:`SqsPoller` takes over the template's SQS event source mappings from moto (which would
  deliver one message per invocation and ignore the response) and delivers batches the way
  Lambda's poller does with ``ReportBatchItemFailures``: messages named in ``batchItemFailures``
  return to the queue; the rest are deleted; SQS's redrive policy moves a message to its DLQ after
  ``maxReceiveCount`` receives.
"""

import importlib.util
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend

from orgkms.local.template import LocalCode

_RUN_LOCK = threading.RLock()


@dataclass
class _Function:
    name: str
    arn: str
    code: LocalCode
    timeout: int
    memory: int
    environment: dict[str, str]
    module: ModuleType | None = None
    handler_attr: str = "lambda_handler"


class LambdaContext:
    """What a handler's ``context`` offers (the subset Powertools uses)."""

    def __init__(self, fn: _Function) -> None:
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = "embedded"
        self._deadline = time.monotonic() + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InProcessLambda:
    """Runs the template's handlers when moto's Lambda is invoked."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self._functions: dict[str, _Function] = {}
        self._extra_env = extra_env or {}
        self.invocations = 0

    def register(self, backend: LambdaBackend, physical_name: str, code: LocalCode) -> None:
        fn = backend.get_function(physical_name)
        record = _Function(
            name=fn.function_name,
            arn=fn.function_arn,
            code=code,
            timeout=int(fn.timeout or 3),
            memory=int(fn.memory_size or 128),
            environment={k: str(v) for k, v in (fn.environment_vars or {}).items()},
        )
        self._functions[fn.function_name] = record
        self._functions[fn.function_arn] = record

    def configure(self, name_or_arn: str, **environment: str) -> None:
        """Set environment variables of one function and restart it cold (a new container)."""
        fn = self._resolve(name_or_arn)
        if fn is None:
            raise KeyError(name_or_arn)
        fn.environment.update(environment)
        fn.module = None

    def knows(self, name_or_arn: str) -> bool:
        return self._resolve(name_or_arn) is not None

    def invoke(self, name_or_arn: str, payload: Any) -> tuple[Any, bool]:
        """Run the handler; returns (result or error document, whether it raised)."""
        fn = self._resolve(name_or_arn)
        if fn is None:
            raise KeyError(name_or_arn)
        event = json.loads(payload) if isinstance(payload, (str, bytes)) else payload
        with _RUN_LOCK, _environment({**fn.environment, **self._extra_env}):
            self.invocations += 1
            try:
                handler = self._handler(fn)
                return handler(event, LambdaContext(fn)), False
            except Exception as err:
                return {
                    "errorType": type(err).__name__,
                    "errorMessage": str(err),
                    "stackTrace": traceback.format_tb(err.__traceback__)[-5:],
                }, True

    def install(self) -> None:
        """Make moto's simple Lambda backend dispatch to this runtime."""
        runtime = self
        original = LambdaSimpleBackend.invoke

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> Any:
            if not runtime.knows(function_name):
                return original(backend, function_name, qualifier, body, headers, response_headers)
            result, failed = runtime.invoke(function_name, body or "{}")
            if failed:
                response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(result).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[assignment,method-assign]

    def _resolve(self, name_or_arn: str) -> _Function | None:
        fn = self._functions.get(name_or_arn)
        if fn is None and ":function:" in name_or_arn:
            fn = self._functions.get(name_or_arn.split(":function:")[1].split(":")[0])
        return fn

    def _handler(self, fn: _Function) -> Any:
        if fn.module is None:
            module_name, _, attr = (fn.code.handler or "app.lambda_handler").rpartition(".")
            path = Path(fn.code.folder) / (module_name.replace(".", "/") + ".py")
            spec = importlib.util.spec_from_file_location(f"orgkms_fn_{fn.code.logical_id}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load handler {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            fn.module = module
            fn.handler_attr = attr
        return getattr(fn.module, fn.handler_attr)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class _Mapping:
    queue_name: str
    queue_arn: str
    function_arn: str
    batch_size: int
    report_failures: bool


class SqsPoller:
    """Delivers the template's SQS event source mappings with Lambda's batch semantics."""

    def __init__(self, runtime: InProcessLambda, sqs_backend: Any, lambda_backend: Any) -> None:
        self._runtime = runtime
        self._sqs = sqs_backend
        self._mappings: list[_Mapping] = []
        for esm in lambda_backend._event_source_mappings.values():
            queue = next(
                (q for q in sqs_backend.queues.values() if q.queue_arn == esm.event_source_arn),
                None,
            )
            if queue is None:
                continue
            queue.lambda_event_source_mappings.pop(esm.function_arn, None)
            self._mappings.append(
                _Mapping(
                    queue_name=queue.name,
                    queue_arn=queue.queue_arn,
                    function_arn=esm.function_arn,
                    batch_size=int(esm.batch_size or 10),
                    report_failures="ReportBatchItemFailures"
                    in (getattr(esm, "function_response_types", None) or []),
                )
            )
        self.batches = 0

    @property
    def mappings(self) -> list[_Mapping]:
        return list(self._mappings)

    def deliver(self, max_rounds: int = 1000) -> int:
        """Deliver until every mapped queue is empty; returns the number of batches."""
        delivered = 0
        for _ in range(max_rounds):
            progressed = False
            for mapping in self._mappings:
                if self._deliver_batch(mapping):
                    delivered += 1
                    progressed = True
            if not progressed:
                return delivered
        return delivered

    def _deliver_batch(self, mapping: _Mapping) -> bool:
        messages = self._sqs.receive_message(mapping.queue_name, mapping.batch_size, 0, 30)
        if not messages:
            return False
        self.batches += 1
        event = {"Records": [_record(m, mapping) for m in messages]}
        result, failed = self._runtime.invoke(mapping.function_arn, event)
        failed_ids: set[str] = set()
        if failed:
            failed_ids = {m.id for m in messages}
        elif mapping.report_failures and isinstance(result, dict):
            failures = result.get("batchItemFailures") or []
            ids = {m.id for m in messages}
            failed_ids = {f.get("itemIdentifier") for f in failures}
            if not failed_ids <= ids or None in failed_ids or "" in failed_ids:
                # Lambda treats an unknown or empty identifier as a failure of the whole batch.
                failed_ids = ids
        for message in messages:
            if message.id in failed_ids:
                self._sqs.change_message_visibility(mapping.queue_name, message.receipt_handle, 0)
            else:
                self._sqs.delete_message(mapping.queue_name, message.receipt_handle)
        return True


def _record(message: Any, mapping: _Mapping) -> dict[str, Any]:
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "SentTimestamp": str(message.sent_timestamp),
            "SenderId": "AIDAORGKMSLOCAL",
            "ApproximateFirstReceiveTimestamp": str(
                message.approximate_first_receive_timestamp or message.sent_timestamp
            ),
        },
        "messageAttributes": {},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": mapping.queue_arn,
        "awsRegion": mapping.queue_arn.split(":")[3],
    }
