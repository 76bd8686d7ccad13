"""Erasing a marked session: every message and marker, every uploaded file, then the session itself.
Shared by the panic button and by the sweep, which finishes deletes whose Lambda died."""

from __future__ import annotations

from chatvault.dal import sessions, uploads
from chatvault.settings import get_settings


def finish_erase(session_id: str) -> tuple[int, int]:
    """Idempotent; returns (items erased, files erased) by this call."""
    items = sessions.erase_items(session_id, get_settings().delete_workers)
    files = uploads.erase_session_files(session_id)
    sessions.remove(session_id)
    return items, files
