"""Lazily created, cached boto3 clients: a cold start pays only for what its function uses, and tests
point them at moto through the standard AWS_ENDPOINT_URL variable."""

from __future__ import annotations

from functools import cache
from typing import Any

from chatvault import deadline

# Attempts of every AWS request, botocore's standard retry mode (throttling, 5xx, timeouts), for these
# clients and PynamoDB's (dal/items.py); the retry policy as a whole is described in dal/retry.py.
SDK_ATTEMPTS = 5


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": SDK_ATTEMPTS},
        connect_timeout=deadline.CONNECT_TIMEOUT_S,
        read_timeout=deadline.READ_TIMEOUT_S,
        max_pool_connections=32,
    )
    if service == "s3":
        config = config.merge(Config(signature_version="s3v4"))  # SigV4 presigned POSTs, never SigV2
    return deadline.guard(boto3.session.Session().client(service, config=config))  # type: ignore[call-overload]
