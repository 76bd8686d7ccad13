"""GET /sessions/{id}: one consistent read."""

from __future__ import annotations

from chatvault.core import clock
from chatvault.core.errors import SessionNotFoundError
from chatvault.dal import sessions
from chatvault.logic.rules.access import Caller, authorize, principal_of, session_id_from_path
from chatvault.models.api import SessionOut


def get_session(raw_session_id: str, caller: Caller) -> SessionOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    record = authorize(sessions.get(session_id), principal)
    if not record.is_live(clock.now()):
        raise SessionNotFoundError()
    return SessionOut.of(record)
