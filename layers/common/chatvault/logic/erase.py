"""Erasing a marked session: every message, marker and upload record, every uploaded file and export
object, then the session itself.
Shared by the panic button and by the sweep, which finishes deletes whose Lambda died."""

from __future__ import annotations

from typing import Literal

from chatvault import clock
from chatvault.dal import exports, sessions, uploads
from chatvault.models.domain import AuditEntry
from chatvault.settings import get_settings


def finish_erase(
    session_id: str,
    messages: int,
    actor: str | None,
    event: Literal[
        "session_deleted", "interrupted_delete_finished", "erased_by_operator"
    ] = "session_deleted",
    details: dict[str, int | str] | None = None,
) -> tuple[int, int]:
    """Idempotent; returns (items erased, files erased) by this call. The session's removal and its
    audit entry (with the counts) are one transaction."""
    items = sessions.erase_items(session_id, get_settings().delete_workers)
    files = uploads.erase_session_files(session_id)
    exports.erase_session_exports(session_id)
    entry = AuditEntry(
        session_id=session_id,
        event=event,
        at=clock.now(),
        actor=actor,
        details={"messages": messages, "uploads": files, **(details or {})},
    )
    sessions.remove(session_id, entry)
    return items, files
