"""Erasing a marked session: every message, marker and upload record, every uploaded file and export
object, then the session itself. The mark (dal/erasure.py mark_erasing) has already destroyed the
conversation's key, so nothing here removes anything that could still be read.
Shared by the panic button and by the sweep, which finishes deletes whose Lambda died."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import erasure, exports, uploads
from chatvault.models.domain import AuditEntry


@dataclass(frozen=True)
class Erased:
    items: int  # items erased by this call
    files: int  # files erased by this call
    messages: int  # messages the session held when its delete began (its mark)
    deleted_at: datetime | None  # when its delete began (None: the session was already removed)


def finish_erase(
    session_id: str,
    actor: str | None,
    event: Literal[
        "session_deleted", "interrupted_delete_finished", "erased_by_operator"
    ] = "session_deleted",
    details: dict[str, int | str] | None = None,
) -> Erased:
    """Idempotent. The session's mark (when, how many messages) is read by the Query that finds its
    items; the session's removal and its audit entry (with the counts) are one transaction."""
    items, mark = erasure.erase_items(session_id, get_settings().delete_workers)
    deleted_at, messages = mark if mark is not None else (None, 0)
    files = uploads.erase_session_files(session_id)
    exports.erase_session_exports(session_id)
    entry = AuditEntry(
        session_id=session_id,
        event=event,
        at=clock.now(),
        actor=actor,
        details={"messages": messages, "uploads": files, **(details or {})},
    )
    erasure.remove(session_id, entry)
    return Erased(items=items, files=files, messages=messages, deleted_at=deleted_at)
