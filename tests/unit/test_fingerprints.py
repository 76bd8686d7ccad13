"""Client fingerprints and audit keys are keyed by the deployment's generated secret, with a new key
for client fingerprints every UTC day (dal/secret.py)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime

import boto3
import pytest

from chatvault.core import clock
from chatvault.dal import audit, secret
from chatvault.logic.rules.access import Caller

pytestmark = pytest.mark.usefixtures("aws")
SECRET = "chatvault-local-FingerprintSecret"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/chatvault-local/local"


def _on(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: moment)


def test_a_client_keeps_its_fingerprint_within_a_day_and_not_across_days(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = Caller(client_ip="203.0.113.7")
    _on(monkeypatch, date(2026, 11, 22))
    monday = caller.fingerprint
    assert monday == Caller(client_ip="203.0.113.7").fingerprint  # rate limits need a stable key
    assert monday != Caller(client_ip="203.0.113.8").fingerprint
    _on(monkeypatch, date(2026, 11, 23))
    assert caller.fingerprint != monday  # the trail cannot be linked from one day to the next


def test_an_address_cannot_be_tried_without_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Salted with anything public (the stack id, as before), every IPv4 address could be tried."""
    _on(monkeypatch, date(2026, 11, 22))
    fingerprint = Caller(client_ip="203.0.113.7").fingerprint
    for public_salt in (STACK_ID, "chatvault-local", ""):
        guess = hmac.new(public_salt.encode(), b"ip:203.0.113.7", hashlib.sha256).hexdigest()[:32]
        assert fingerprint != guess
    # the same address under another deployment's secret is another fingerprint
    value = boto3.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    boto3.client("secretsmanager").put_secret_value(SecretId=SECRET, SecretString=value + "x")
    secret.forget()
    assert Caller(client_ip="203.0.113.7").fingerprint != fingerprint


def test_the_secret_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = secret.client("secretsmanager").get_secret_value
    monkeypatch.setattr(
        secret.client("secretsmanager"), "get_secret_value", lambda **kw: calls.append(kw) or real(**kw)
    )
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert Caller(client_ip=ip).fingerprint
    audit.subject_of("0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11")
    assert len(calls) == 1


def test_audit_keys_of_sessions_are_keyed_by_the_secret_and_stable() -> None:
    session_id = "0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11"
    key = audit.subject_of(session_id)
    assert key.startswith("s#")
    assert key == audit.subject_of(session_id)
    salted = hmac.new(STACK_ID.encode(), session_id.encode(), hashlib.sha256).hexdigest()[:32]
    assert key != "s#" + salted
    assert session_id not in key
