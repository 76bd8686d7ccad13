"""Why a conditional write on a session was refused, as the caller's error."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from chatvault.core.errors import SessionEndedError, SessionNotFoundError
from chatvault.dal import sessions
from chatvault.logic.rules.access import authorize_live
from chatvault.models.domain import Principal, SessionRecord


def refused(session_id: str, principal: Principal, at: datetime) -> SessionRecord:
    """Read the session after a refused write: 404 unless it is the caller's and live. Returns the
    record (for the caller to decide) only when it is live and not ended."""
    record = authorize_live(sessions.get(session_id), principal, at)
    return record


def raise_refusal(session_id: str, principal: Principal, at: datetime) -> NoReturn:
    """404 for a missing, foreign, expired or erased session; 409 for an ended one. Reads the session
    item alone (its state: no profile, no key)."""
    record = authorize_live(sessions.state(session_id), principal, at)
    raise_for(record)


def raise_for(record: SessionRecord) -> NoReturn:
    """The error for a refused write to a session that is the caller's and live (from `refused`)."""
    if record.status == "ended":
        raise SessionEndedError()
    raise SessionNotFoundError()  # changed under us (re-created): nothing was written
