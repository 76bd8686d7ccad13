"""DELETE /sessions/{id}: the panic button. Permanent, and safe to retry.

1. destroy the conversation's key and mark the session as being erased, in one transaction
   (unreadable at once, here and in any backup; message count frozen);
2. erase every message and marker of the partition (batched, parallel), then every file under
   `uploads/{session_id}/` (1,000 keys a call);
3. remove the session item and its profile.
An expired session (invisible to every read, but on disk until DynamoDB's TTL gets to it, often days
later) is erased the same way: the owner asked for the data to be gone, and it still exists.
A Lambda that dies between steps leaves a marked session: a retried DELETE finishes the job, and so
does the next sweep (logic/sweep_orphans.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from chatvault.core import clock
from chatvault.core.errors import SessionNotFoundError
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import get_settings
from chatvault.dal import erasure, sessions
from chatvault.logic.rules.access import Caller, authorize, principal_of, session_id_from_path
from chatvault.logic.rules.erase import finish_erase
from chatvault.models.api import DeleteReceiptOut
from chatvault.models.domain import EraseReceipt


def delete_session(raw_session_id: str, caller: Caller) -> DeleteReceiptOut:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    # An expired session the owner can still prove is erased now too, rather than left to TTL (days)
    before = authorize(sessions.state(session_id), principal)
    at = clock.now()
    if not erasure.mark_erasing(
        session_id, principal, at, at + timedelta(seconds=settings.retention_seconds)
    ):
        raise SessionNotFoundError()  # removed by a concurrent delete

    erased = finish_erase(session_id, caller.fingerprint)

    logger.info(
        "session erased",
        extra={"session_id": session_id, "items_erased": erased.items, "files_erased": erased.files},
    )
    metrics.add_metric(name="SessionsErased", unit="Count", value=1)
    if erased.deleted_at is None:  # a concurrent delete removed it meanwhile: its mark, as read before
        erased = replace(erased, deleted_at=before.deleted_at or at, messages=before.message_count)
    return DeleteReceiptOut.of(
        EraseReceipt(
            session_id=session_id,
            deleted_at=erased.deleted_at or at,
            messages=erased.messages,
            uploads=erased.files,
        )
    )
