"""POST /sessions: a new session; in anonymous mode its token, returned this once."""

from __future__ import annotations

import uuid
from datetime import timedelta

from chatvault.core import clock
from chatvault.core.errors import SessionExistsError, UnauthenticatedError, ValidationFailedError
from chatvault.core.observability import metrics
from chatvault.core.settings import Settings, get_settings
from chatvault.dal import sessions
from chatvault.logic.rules.access import Caller, new_token
from chatvault.logic.rules.limits import refusals_audited
from chatvault.models.api import CreatedSessionOut, CreateSessionRequest, SessionOut
from chatvault.models.domain import AuditEntry, NewSession, RateCharge, retention_of


def create_session(request: CreateSessionRequest, caller: Caller) -> CreatedSessionOut:
    settings = get_settings()
    token: str | None = None
    token_hash: str | None = None
    owner_id: str | None = None
    if settings.auth_mode == "jwt" and not caller.subject:
        raise UnauthenticatedError()
    if settings.accounts and caller.subject:  # both mode: signed in, or else anonymous
        owner_id = caller.subject
    else:
        token, token_hash = new_token()

    at = clock.now()
    session_id = str(request.session_id or uuid.uuid4())
    retention_hours = own_retention(request.retention_hours, request.temporary, settings)
    charge = RateCharge(
        action="create_session", client=caller.fingerprint, at=at, per_minute=settings.create_limit_per_minute
    )
    entry = AuditEntry(session_id=session_id, event="session_created", at=at, actor=caller.fingerprint)
    with refusals_audited(charge):
        record = sessions.create(
            NewSession(
                session_id=session_id,
                token_hash=token_hash,
                owner_id=owner_id,
                title=request.title,
                metadata=request.metadata,
                created_at=at,
                expires_at=at + retention_of(retention_hours, timedelta(seconds=settings.retention_seconds)),
                temporary=request.temporary,
                retention_hours=retention_hours,
            ),
            charge,
            entry,
        )
        if record is None:
            raise SessionExistsError()
    metrics.add_metric(name="SessionsCreated", unit="Count", value=1)
    return CreatedSessionOut(**SessionOut.of(record).model_dump(), session_token=token)


def own_retention(asked: int | None, temporary: bool, settings: Settings) -> int | None:
    """The conversation's own retention in hours: what it asked for, at most the deployment's
    RetentionHours (more: 422); a temporary one's is TemporaryRetentionHours unless it asked for less
    (more is lowered to it: a temporary conversation is never kept longer); None: the deployment's
    RetentionHours (a session stored without one follows a later change of it)."""
    if asked is not None and asked > settings.retention_hours:
        raise ValidationFailedError(
            "body.retention_hours", f"must be at most {settings.retention_hours} (RetentionHours)"
        )
    if temporary:
        return min(asked or settings.temporary_hours, settings.temporary_hours)
    return asked
