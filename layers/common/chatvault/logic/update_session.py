"""PATCH /sessions/{id}: title, metadata (replaced whole) and the one-way `status: "ended"`.
One conditional UpdateItem; only when it is refused do we read, to say why."""

from __future__ import annotations

from datetime import timedelta

from chatvault import clock
from chatvault.dal import sessions
from chatvault.logic.identity import Caller, principal_of, session_id_from_path
from chatvault.logic.session_state import raise_for, refused
from chatvault.models.api import SessionOut, UpdateSessionRequest
from chatvault.models.domain import AuditEntry, SessionChanges
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
    retention = timedelta(seconds=get_settings().retention_seconds)
    entry = (
        AuditEntry(session_id=session_id, event="session_ended", at=at, actor=caller.fingerprint)
        if changes.end
        else None
    )
    updated = sessions.update(session_id, principal, changes, at, retention, entry=entry)
    if updated is not None:
        return SessionOut.of(updated)

    record = refused(session_id, principal, at)  # one read, to say why
    if record.status == "ended" and changes.fields == {"status"}:
        return SessionOut.of(record)  # ending an ended session changes nothing
    raise_for(record)
