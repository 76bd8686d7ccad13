"""One Logger, Tracer and Metrics for the whole process (service name and namespace come from the
POWERTOOLS_* variables that template.yaml sets in Globals)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

# The AWS SDKs log whole requests and responses at DEBUG, and Powertools' event handler logs each
# route's arguments (message content, titles, file names). Whatever level a deployment chooses for
# our own logs, these stay at WARNING.
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer", "pynamodb", "aws_lambda_powertools"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)


class _NoTracer:
    """Stands in for Powertools' Tracer when tracing is off (the EnableTracing parameter): the X-Ray
    SDK the Tracer loads costs a third of a second of every cold start, for traces nobody records."""

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return handler

    def capture_method(self, method: Callable[..., Any]) -> Callable[..., Any]:
        return method


def _tracer() -> Tracer:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return cast(Tracer, _NoTracer())  # the same decorators, doing nothing
    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()

# API Gateway HTTP API request id: the same id the error bodies carry as `request_id`.
CORRELATION_PATH = correlation_paths.API_GATEWAY_HTTP

__all__ = ["CORRELATION_PATH", "logger", "metrics", "tracer"]
