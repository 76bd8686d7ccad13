"""Shared fixtures. In-process tests run the real layer and handlers against moto's in-process mock,
with the table and bucket built from template.yaml's own definitions."""

from __future__ import annotations

import os

# The functions read their settings once per process: give them the template's local values
# before anything from the layer is imported.
os.environ.update(
    {
        "TABLE_NAME": "chatvault-local-SessionsTable",
        "AUDIT_TABLE": "chatvault-local-AuditTable",
        "LIMITS_TABLE": "chatvault-local-LimitsTable",
        "KEYS_TABLE": "chatvault-local-KeysTable",
        "UPLOADS_BUCKET": "chatvault-local-uploadsbucket",
        "FINGERPRINT_SECRET": "chatvault-local-FingerprintSecret",
        "EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/chatvault-local-MessageEventsQueue.fifo",
        "AUTH_MODE": "anonymous",
        "RETENTION_HOURS": "720",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "chatvault",
        "POWERTOOLS_METRICS_NAMESPACE": "ChatVault",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from collections.abc import Iterator

import pytest
from moto import mock_aws

from chatvault.core.settings import get_settings
from infra.local.emulator import provision, serialize_dynamodb
from infra.template import Stack
from tests.issuer import AUDIENCE, Issuer, local_issuer

serialize_dynamodb()


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh in-process AWS holding the template's tables and bucket."""
    from chatvault.dal import secret

    with mock_aws():
        provision(Stack.from_template())
        secret.forget()  # this emulator's fingerprint secret, not a previous test's
        yield


@pytest.fixture
def jwt_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUTH_MODE", "jwt")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    with local_issuer() as running:
        yield running


@pytest.fixture
def both_mode(monkeypatch: pytest.MonkeyPatch, issuer: Issuer) -> Iterator[Issuer]:
    """AuthMode=both, with bearer tokens signed by the loopback issuer (tests/issuer.py)."""
    from chatvault.dal import jwks

    monkeypatch.setenv("AUTH_MODE", "both")
    monkeypatch.setenv("JWT_ISSUER", issuer.url)
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    get_settings.cache_clear()
    jwks.forget()
    yield issuer
    monkeypatch.undo()
    get_settings.cache_clear()
    jwks.forget()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change environment variables for one test; settings are re-read before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _no_deadline() -> Iterator[None]:
    """Each Lambda invocation sets its own deadline; tests that call logic directly run without one."""
    from chatvault.core import deadline

    deadline.start(None)
    yield
    deadline.start(None)
