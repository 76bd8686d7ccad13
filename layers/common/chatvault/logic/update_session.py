"""PATCH /sessions/{id}: title, metadata (replaced whole) and the one-way `status: "ended"`.
One conditional UpdateItem; only when it is refused do we read, to say why."""

from __future__ import annotations

from datetime import timedelta

from chatvault import clock
from chatvault.dal import sessions
from chatvault.errors import SessionEndedError, SessionNotFoundError
from chatvault.logic.identity import Caller, authorize, principal_of, session_id_from_path
from chatvault.models.api import SessionOut, UpdateSessionRequest
from chatvault.models.domain import SessionChanges
from chatvault.settings import get_settings


def update_session(raw_session_id: str, request: UpdateSessionRequest, caller: Caller) -> SessionOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    changes = SessionChanges(
        fields=frozenset(request.model_fields_set),
        title=request.title,
        metadata=request.metadata,
        end=request.status == "ended",
    )
    at = clock.now()
    expires_at = at + timedelta(seconds=get_settings().retention_seconds)
    updated = sessions.update(session_id, principal, changes, at, expires_at)
    if updated is not None:
        return SessionOut.of(updated)

    record = authorize(sessions.get(session_id), principal)
    if not record.is_live(at):
        raise SessionNotFoundError()
    if record.status == "ended":
        if changes.fields == {"status"}:
            return SessionOut.of(record)  # ending an ended session changes nothing
        raise SessionEndedError()
    raise SessionNotFoundError()  # changed under us (deleted or re-created): nothing was written
