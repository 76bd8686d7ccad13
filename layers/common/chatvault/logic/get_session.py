"""GET /sessions/{id}: one consistent read."""

from __future__ import annotations

from chatvault.core import clock
from chatvault.dal import sessions
from chatvault.logic.rules.access import Caller, authorize_live, principal_of, session_id_from_path
from chatvault.models.api import SessionOut


def get_session(raw_session_id: str, caller: Caller) -> SessionOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    record = authorize_live(sessions.get(session_id), principal, clock.now())
    return SessionOut.of(record)
