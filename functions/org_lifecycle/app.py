"""Control-plane queue consumer: org-created events become organization keys.

Thin by design: clients and services are built once per container; each SQS record is parsed and
handled by :class:`orgkms.lifecycle.ControlPlaneConsumer`; failures are reported per message.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from orgkms.aws import Platform
from orgkms.lifecycle import ControlPlaneConsumer
from orgkms.observability import SERVICE, metrics

logger = Logger(service=SERVICE)
# A batch whose every message failed still answers per message, never as one crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_consumer: ControlPlaneConsumer | None = None


def _get_consumer() -> ControlPlaneConsumer:
    """Built on the first event, then kept for the life of the container."""
    global _consumer
    if _consumer is None:
        _consumer = ControlPlaneConsumer.from_platform(Platform.from_env())
    return _consumer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    consumer = _get_consumer()
    if consumer.idempotency_config is not None:
        consumer.idempotency_config.register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=consumer.handle_record, processor=processor, context=context
    )
