"""DELETE /sessions (signed-in users: jwt mode, and `both` for a caller with a JWT): erase every
session of the caller with the panic button's guarantees, and answer one receipt.

1. find the caller's sessions (the owner index, every page) and mark each as being erased, in
   parallel, each with its key destroyed in the same transaction: all of them are unreadable at
   once, here and in any backup, their message counts frozen;
2. erase each marked session as the panic button does (logic/rules/erase.py: messages, markers, upload
   records, files, exports, then the session with its audit entry), DELETE_WORKERS // 2 at a time
   (each erase runs its own batches in parallel), starting a session only while the Lambda has
   time left for it.
A run that dies, or stops at its deadline (503 with Retry-After), leaves marked sessions: a retry
finds them again through the owner index (the mark keeps it) and finishes them, and so does the
sweep (logic/sweep_orphans.py). The principal is the caller's JWT subject, whatever the mode."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from chatvault.core import clock, deadline
from chatvault.core.errors import RouteNotFoundError, StorageUnavailableError, UnauthenticatedError
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import get_settings
from chatvault.dal import erasure, session_lists
from chatvault.logic.rules.access import Caller
from chatvault.logic.rules.erase import finish_erase
from chatvault.models.api import EraseAllReceiptOut, ErasedAllCounts
from chatvault.models.domain import Principal

# Time kept free before starting a session's erase: most take well under a second (a few requests);
# one of 10,000 messages takes seconds. Should the Lambda still be stopped mid-way, nothing is lost:
# the session is marked, and a retry or the sweep finishes it.
SESSION_BUDGET_S = 5.0


def erase_all_sessions(caller: Caller) -> EraseAllReceiptOut:
    settings = get_settings()
    if not settings.accounts:
        raise RouteNotFoundError("Erasing all sessions needs accounts; this deployment is anonymous.")
    if not caller.subject:
        raise UnauthenticatedError()
    principal = Principal(owner_id=caller.subject)
    actor = caller.fingerprint
    at = clock.now()
    keep_until = at + timedelta(seconds=settings.retention_seconds)
    session_ids = session_lists.owned_ids(caller.subject)

    with ThreadPoolExecutor(max_workers=settings.delete_workers, thread_name_prefix="mark") as pool:
        marks = list(
            pool.map(lambda sid: (sid, erasure.mark_erasing(sid, principal, at, keep_until)), session_ids)
        )
    marked = [sid for sid, mark in marks if mark]

    def erase(session_id: str) -> tuple[int, int] | None:
        left = deadline.remaining_s()
        if left is not None and left < SESSION_BUDGET_S:
            return None  # marked, so a retry or the sweep finishes it
        erased = finish_erase(session_id, actor)
        return erased.messages, erased.files

    workers = max(1, settings.delete_workers // 2)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="erase") as pool:
        done = list(pool.map(erase, marked))
    finished = [d for d in done if d is not None]
    metrics.add_metric(name="SessionsErased", unit="Count", value=len(finished))
    logger.info(
        "sessions of a user erased",
        extra={"sessions": len(finished), "left_for_retry": len(marked) - len(finished)},
    )
    if len(finished) < len(marked):
        raise StorageUnavailableError(
            "Not every session could be erased in time; all are unreadable already: retry to finish."
        )
    return EraseAllReceiptOut(
        deleted_at=clock.iso(at),
        erased=ErasedAllCounts(
            sessions=len(finished),
            messages=sum(m for m, _ in finished),
            uploads=sum(f for _, f in finished),
        ),
    )
