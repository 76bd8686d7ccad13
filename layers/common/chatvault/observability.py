"""One Logger, Tracer and Metrics for the whole process (service name and namespace come from the
POWERTOOLS_* variables that template.yaml sets in Globals)."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

# The AWS SDKs log whole requests and responses at DEBUG, and Powertools' event handler logs each
# route's arguments (message content, titles, file names). Whatever level a deployment chooses for
# our own logs, these stay at WARNING.
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer", "pynamodb", "aws_lambda_powertools"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# API Gateway HTTP API request id: the same id the error bodies carry as `request_id`.
CORRELATION_PATH = correlation_paths.API_GATEWAY_HTTP

__all__ = ["CORRELATION_PATH", "logger", "metrics", "tracer"]
