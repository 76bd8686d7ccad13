"""Lazily created, cached boto3 clients: a cold start pays only for what its function uses, and tests
point them at moto through the standard AWS_ENDPOINT_URL variable."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=5)
    if service == "s3":
        config = config.merge(Config(signature_version="s3v4"))  # SigV4 presigned POSTs, never SigV2
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
