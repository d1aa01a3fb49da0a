"""Result events back to the control plane's bus."""

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel

from orgkms.errors import OrgKmsError
from orgkms.models import RESULT_SOURCE
from orgkms.observability import SERVICE

logger = Logger(service=SERVICE, child=True)


class PublishError(OrgKmsError):
    """EventBridge did not accept a result event."""


class ResultPublisher:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events = events
        self._bus = bus_name

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        entry = {
            "Source": RESULT_SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail.model_dump(by_alias=True, exclude_none=True)),
            "EventBusName": self._bus,
        }
        try:
            response = self._events.put_events(Entries=[entry])
        except ClientError as err:
            raise PublishError(f"publishing {detail_type} failed: {err}") from err
        if response.get("FailedEntryCount"):
            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise PublishError(f"publishing {detail_type} failed: {code}")
        logger.debug("result event published", extra={"detail_type": detail_type})
