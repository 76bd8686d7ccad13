"""The lifecycle against a deployed stack: `E2E_API_URL=https://<id>.execute-api.<region>.amazonaws.com
pytest -m e2e tests/e2e` (anonymous mode). Not part of `make test`: it needs an AWS deployment."""

from __future__ import annotations

import os

import pytest
import requests

pytestmark = pytest.mark.e2e
API = os.environ.get("E2E_API_URL", "").rstrip("/")


@pytest.mark.skipif(not API, reason="E2E_API_URL is not set")
def test_lifecycle_on_the_deployed_stack() -> None:
    created = requests.post(f"{API}/api/v1/sessions", json={"title": "e2e"}, timeout=15)
    assert created.status_code == 201
    url = f"{API}/api/v1/sessions/{created.json()['session_id']}"
    auth = {"X-Session-Token": created.json()["session_token"]}
    assert requests.get(url, headers=auth, timeout=15).json()["title"] == "e2e"
    assert requests.get(url, timeout=15).status_code == 401
    assert requests.delete(url, headers=auth, timeout=15).status_code == 200
    assert requests.get(url, headers=auth, timeout=15).status_code == 404
