"""Logging and metrics for the package: Powertools, under one service name.

Library modules log through child loggers (``Logger(service=SERVICE, child=True)``) of the
``orgkms`` service logger that handlers create,
so their records come out as the handler's JSON lines (with its request id and appended keys)
whatever order modules were imported in. Log org ids, key ARNs and counts; never data or keys.
"""

import os

from aws_lambda_powertools import Metrics

SERVICE = "orgkms"


metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", SERVICE), service=SERVICE
)
