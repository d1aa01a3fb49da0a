"""Daily rotation scanner: queue one rotate-due message per organization whose rotation is due.

Reads only the registry's sparse rotation index (due organizations), never the whole registry;
the rotations themselves run one message at a time in the org-lifecycle function.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from orgkms.aws import Platform
from orgkms.lifecycle import queue_due_rotations
from orgkms.observability import SERVICE, metrics

logger = Logger(service=SERVICE)
_platform: Platform | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _platform
    if _platform is None:
        _platform = Platform.from_env()
    queued = queue_due_rotations(_platform, os.environ["ORGKMS_ROTATION_QUEUE_URL"])
    return {"queued": queued}
