"""Presigned URLs name the bucket's regional virtual-hosted endpoint: the global one answers a bucket
outside us-east-1 with a redirect that breaks a browser's CORS upload. Signing is local, so these need
no AWS (not even moto); the S3 client is rebuilt for each region and for the suite afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from chatvault.core.settings import get_settings
from chatvault.dal import uploads
from chatvault.dal.aws import clients

KEY = "uploads/0b6a3a52-7d6e-4c1e-9a55-3f1f1d0c9e01/5d1c6f0e-2b7a-4f3e-8c1d-9a0b1c2d3e4f"


@pytest.fixture
def fresh_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    clients.client.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    clients.client.cache_clear()  # the next test's client is built with the suite's environment


def _urls() -> tuple[str, str]:
    post = uploads.presigned_post(KEY, "text/plain", 10, 300)["url"]
    get = uploads.presigned_get(KEY, 300, "text/plain")
    return post, get


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_urls_name_the_buckets_regional_endpoint(fresh_client: pytest.MonkeyPatch, region: str) -> None:
    fresh_client.setenv("AWS_REGION", region)
    fresh_client.setenv("AWS_DEFAULT_REGION", region)
    bucket = get_settings().uploads_bucket

    post, get = _urls()

    assert post == f"https://{bucket}.s3.{region}.amazonaws.com/"
    assert get.startswith(f"https://{bucket}.s3.{region}.amazonaws.com/{KEY}?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in get  # SigV4, never SigV2


def test_an_emulator_at_an_ip_address_keeps_path_style_urls(fresh_client: pytest.MonkeyPatch) -> None:
    """The local stack points S3 at moto on 127.0.0.1, where a browser posts its files."""
    fresh_client.setenv("AWS_REGION", "eu-west-1")
    fresh_client.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    bucket = get_settings().uploads_bucket

    post, get = _urls()

    assert post == f"http://127.0.0.1:5000/{bucket}"
    assert urlsplit(get).netloc == "127.0.0.1:5000"
    assert urlsplit(get).path == f"/{bucket}/{KEY}"
