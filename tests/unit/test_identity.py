from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from chatvault.core.errors import SessionNotFoundError, TokenRequiredError, UnauthenticatedError
from chatvault.logic.rules.access import (
    Caller,
    authorize,
    hash_token,
    new_token,
    principal_of,
    session_id_from_path,
)
from chatvault.models.domain import Principal, SessionRecord


def _record(token_hash: str | None = None, owner_id: str | None = None) -> SessionRecord:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return SessionRecord(
        session_id="0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11",
        token_hash=token_hash,
        owner_id=owner_id,
        title=None,
        metadata={},
        status="active",
        created_at=at,
        updated_at=at,
        last_message_at=None,
        message_count=0,
        preview=None,
        expires_at=at,
    )


def test_tokens_carry_256_random_bits_and_only_their_sha256_is_kept() -> None:
    token, stored = new_token()
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored
    assert len({new_token()[0] for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11", "0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11"),
        ("0B6F7D1E-9A39-4C8E-9C5A-7F1F3D0F4A11", "0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11"),
    ],
)
def test_path_ids_are_canonical_uuids(raw: str, expected: str) -> None:
    assert session_id_from_path(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "abc", "0b6f7d1e9a394c8e9c5a7f1f3d0f4a11", "{0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11}", "../x"]
)
def test_anything_else_in_the_path_names_no_session(raw: str) -> None:
    with pytest.raises(SessionNotFoundError):
        session_id_from_path(raw)


def test_anonymous_principal_needs_a_token() -> None:
    with pytest.raises(TokenRequiredError):
        principal_of(Caller())
    assert principal_of(Caller(token="t")) == Principal(token_hash=hash_token("t"))


@pytest.mark.usefixtures("jwt_mode")
def test_jwt_principal_is_the_subject_and_ignores_tokens() -> None:
    with pytest.raises(UnauthenticatedError):
        principal_of(Caller(token="t"))
    assert principal_of(Caller(subject="alice")) == Principal(owner_id="alice")


def test_authorize_lets_the_token_holder_in_and_nobody_else() -> None:
    record = _record(token_hash=hash_token("right"))
    assert authorize(record, Principal(token_hash=hash_token("right"))) is record
    for principal in (Principal(token_hash=hash_token("wrong")), Principal(owner_id="x"), Principal()):
        with pytest.raises(SessionNotFoundError):
            authorize(record, principal)
    with pytest.raises(SessionNotFoundError):
        authorize(None, Principal(token_hash=hash_token("right")))


def test_authorize_by_owner() -> None:
    record = _record(owner_id="alice")
    assert authorize(record, Principal(owner_id="alice")) is record
    with pytest.raises(SessionNotFoundError):
        authorize(record, Principal(owner_id="alicE"))
    with pytest.raises(SessionNotFoundError):
        authorize(_record(token_hash=hash_token("t")), Principal(owner_id="alice"))
