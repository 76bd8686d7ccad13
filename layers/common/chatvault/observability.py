"""One Logger, Tracer and Metrics for the whole process (service name and namespace come from the
POWERTOOLS_* variables that template.yaml sets in Globals)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# API Gateway HTTP API request id: the same id the error bodies carry as `request_id`.
CORRELATION_PATH = correlation_paths.API_GATEWAY_HTTP

__all__ = ["CORRELATION_PATH", "logger", "metrics", "tracer"]
