"""POST /sessions: a new session; in anonymous mode its token, returned this once."""

from __future__ import annotations

import uuid
from datetime import timedelta

from chatvault import clock
from chatvault.dal import sessions
from chatvault.errors import UnauthenticatedError
from chatvault.logic.identity import Caller, new_token
from chatvault.models.api import CreatedSessionOut, CreateSessionRequest, SessionOut
from chatvault.models.domain import NewSession
from chatvault.settings import get_settings


def create_session(request: CreateSessionRequest | None, caller: Caller) -> CreatedSessionOut:
    settings = get_settings()
    request = request or CreateSessionRequest()
    token: str | None = None
    token_hash: str | None = None
    owner_id: str | None = None
    if settings.auth_mode == "jwt":
        if not caller.subject:
            raise UnauthenticatedError()
        owner_id = caller.subject
    else:
        token, token_hash = new_token()

    at = clock.now()
    record = sessions.create(
        NewSession(
            session_id=str(request.session_id or uuid.uuid4()),
            token_hash=token_hash,
            owner_id=owner_id,
            title=request.title,
            metadata=request.metadata,
            created_at=at,
            expires_at=at + timedelta(seconds=settings.retention_seconds),
        )
    )
    return CreatedSessionOut(**SessionOut.of(record).model_dump(), session_token=token)
