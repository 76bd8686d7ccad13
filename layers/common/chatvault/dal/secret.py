"""The deployment's keyed hashes: client fingerprints (audit `actor`, rate-limit keys) and the audit
trail's session keys, all HMACs under one secret that CloudFormation generates at deploy time in
Secrets Manager (GenerateSecretString: the value is never in the template, the code or a log).

A fingerprint salted with something public (the stack id, say) is no pseudonym: every IPv4 address
can be tried in minutes. Under a secret, whoever reads the tables without it learns nothing. And a
client's fingerprint is keyed by a *daily* key derived from the secret, so one person's requests
cannot be linked from one day to the next in the audit table alone. Session keys are not rotated: a
session's trail must stay findable from its id (and, without the secret, not even from that).

The same secret, under a label of its own, wraps each conversation's key (`wrapping_key`,
dal/conversation_keys.py). The secret is read once per process, on first use: a cold start of a
function that writes audit entries, counts a rate limit or opens a conversation's key."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from functools import cache, lru_cache

from chatvault.core import snapshot
from chatvault.core.settings import get_settings
from chatvault.dal.aws.clients import client
from chatvault.dal.aws.retry import storage_errors

_DIGEST_CHARS = 32
# under SnapStart, the client is in the snapshot; the secret itself is read in an invocation
snapshot.prime(lambda: client("secretsmanager"))


@cache
@storage_errors
def _master_key() -> bytes:
    response = client("secretsmanager").get_secret_value(SecretId=get_settings().fingerprint_secret)
    return str(response["SecretString"]).encode("utf-8")


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:_DIGEST_CHARS]


@lru_cache(maxsize=4)
def _day_key(day: date) -> bytes:
    return hmac.new(_master_key(), f"client-day:{day.isoformat()}".encode(), hashlib.sha256).digest()


def client_fingerprint(basis: str, day: date) -> str:
    """A client (an IP address or a JWT subject) on one UTC day; another day, another fingerprint."""
    return _mac(_day_key(day), basis)


def session_subject(session_id: str) -> str:
    """The audit trail's key of a session."""
    return _mac(_master_key(), f"session:{session_id}")


@cache
def wrapping_key() -> bytes:
    """The key that wraps each conversation's key (dal/conversation_keys.py): derived from the
    deployment's secret under its own label, so it is no key that hashes anything. Rotating the secret
    makes every stored conversation unreadable."""
    return hmac.new(_master_key(), b"conversation-key-wrap:v1", hashlib.sha256).digest()


def held() -> bool:
    """Has this process read the wrapping key already (no request to get it)?"""
    return wrapping_key.cache_info().currsize > 0


def forget() -> None:
    """Drop the keys this process holds (tests: a new emulator, or a new function's cold start)."""
    _master_key.cache_clear()
    _day_key.cache_clear()
    wrapping_key.cache_clear()
