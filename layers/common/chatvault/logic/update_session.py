"""PATCH /sessions/{id}: title, metadata (replaced whole), the one-way `status: "ended"` and the
conversation's own retention. One conditional UpdateItem; only when it is refused do we read, to say
why. A new retention is then applied to every message and upload (dal/retention.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from chatvault.core import clock
from chatvault.core.errors import ValidationFailedError
from chatvault.core.settings import Settings, get_settings
from chatvault.dal import retention as retained
from chatvault.dal import sessions
from chatvault.logic.rules.access import Caller, authorize_live, principal_of, session_id_from_path
from chatvault.logic.rules.limits import charge_session_hourly
from chatvault.logic.rules.session_state import raise_for, refused
from chatvault.models.api import SessionOut, UpdateSessionRequest
from chatvault.models.domain import AuditEntry, Principal, SessionChanges, retention_of


def update_session(raw_session_id: str, request: UpdateSessionRequest, caller: Caller) -> SessionOut:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    hours = request.retention_hours
    if hours is not None and hours > settings.retention_hours:
        raise ValidationFailedError(
            "body.retention_hours", f"must be at most {settings.retention_hours} (RetentionHours)"
        )
    changes = SessionChanges(
        fields=frozenset(request.model_fields_set),
        title=request.title,
        metadata=request.metadata,
        end=request.status == "ended",
        retention_hours=hours,
        temporary_allowed=hours is None or hours <= settings.temporary_hours,
    )
    at = clock.now()
    deployment = timedelta(seconds=settings.retention_seconds)
    if hours is not None:
        _charge_retention_change(session_id, principal, at, settings)
    entry = (
        AuditEntry(session_id=session_id, event="session_ended", at=at, actor=caller.fingerprint)
        if changes.end
        else None
    )
    updated = sessions.update(session_id, principal, changes, at, deployment, entry=entry)
    if updated is None and not changes.temporary_allowed:
        record = refused(session_id, principal, at)  # one read, to say why
        if record.temporary:  # never kept longer than a temporary conversation may be: lowered to it
            changes = changes.model_copy(
                update={"retention_hours": settings.temporary_hours, "temporary_allowed": True}
            )
            updated = sessions.update(session_id, principal, changes, at, deployment, entry=entry)
    if updated is not None:
        if changes.retention_hours is not None:  # every message and upload kept as long as it now is
            retained.apply(session_id, retention_of(changes.retention_hours, deployment), at)
        return SessionOut.of(updated)

    record = refused(session_id, principal, at)  # one read, to say why
    if record.status == "ended" and changes.fields == {"status"}:
        return SessionOut.of(record)  # ending an ended session changes nothing
    raise_for(record)


def _charge_retention_change(session_id: str, principal: Principal, at: datetime, settings: Settings) -> None:
    """A change of retention moves the TTL of every message and upload: a session may make
    RETENTION_CHANGE_LIMIT_PER_HOUR of them an hour (429 beyond). Counted for the session's own
    caller only (its state read first, one GetItem on this rare path): no one else can use up its
    count."""
    authorize_live(sessions.state(session_id), principal, at)
    limit = settings.retention_change_limit_per_hour
    charge_session_hourly("retention", session_id, at, limit, "changed its retention")
