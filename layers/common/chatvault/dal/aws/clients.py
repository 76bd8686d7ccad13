"""Lazily created, cached boto3 clients: a cold start pays only for what its function uses, and tests
point them at moto through the standard AWS_ENDPOINT_URL variable."""

from __future__ import annotations

from functools import cache
from typing import Any

from chatvault.core import deadline

# Attempts of every AWS request, botocore's standard retry mode (throttling, 5xx, timeouts), for these
# clients and PynamoDB's (dal/aws/items.py); the retry policy as a whole is described in dal/aws/retry.py.
SDK_ATTEMPTS = 5

# S3 requests and presigned URLs (POST forms, download links) go to the bucket's regional
# virtual-hosted endpoint, `https://<bucket>.s3.<region>.amazonaws.com/`, signed with SigV4 (never
# SigV2). Left to itself botocore signs presigned URLs for the global `<bucket>.s3.amazonaws.com`,
# which a bucket outside us-east-1 answers, for up to a day after its creation, with a redirect
# that a browser's CORS upload cannot follow. us-east-1 is named too, for one form everywhere. An
# endpoint given as an IP address (the local stack's moto, through AWS_ENDPOINT_URL) keeps path-style
# URLs, `http://127.0.0.1:<port>/<bucket>/<key>`: S3's endpoint rules never put a bucket name in
# front of an IP address.
S3_ADDRESSING = {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}


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
        config = config.merge(Config(signature_version="s3v4", s3=S3_ADDRESSING))
    return deadline.guard(boto3.session.Session().client(service, config=config))  # type: ignore[call-overload]
