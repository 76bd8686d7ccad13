"""GET /sessions (jwt and both modes): the caller's live sessions, newest activity first."""

from __future__ import annotations

from chatvault.core import clock
from chatvault.core.errors import RouteNotFoundError, UnauthenticatedError
from chatvault.core.settings import get_settings
from chatvault.dal import session_lists
from chatvault.logic.rules import cursor
from chatvault.logic.rules.access import Caller
from chatvault.models.api import SessionListOut, SessionOut


def list_sessions(caller: Caller, limit: int, raw_cursor: str | None) -> SessionListOut:
    if not get_settings().accounts:
        raise RouteNotFoundError("Listing sessions needs accounts; this deployment is anonymous.")
    if not caller.subject:
        raise UnauthenticatedError()
    scope = f"owner:{caller.subject}"
    start = cursor.decode(scope, raw_cursor)
    records, last_key = session_lists.list_by_owner(caller.subject, clock.now(), limit, start)
    return SessionListOut(
        items=[SessionOut.of(r) for r in records], next_cursor=cursor.encode(scope, last_key)
    )
