"""The panic button's storage steps, in order: mark (the conversation's key destroyed and the session
made unreadable, in one transaction), erase (every message, marker and record of its partition),
remove (the session item and profile, with the audit entry). Each step is idempotent and resumable:
a Lambda that dies between two leaves a mark that a retry or the sweep finishes (logic/rules/erase.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from chatvault.dal import audit, conversation_keys
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import (
    ErasingMark,
    ProfileItem,
    SessionItem,
    StoredKey,
)
from chatvault.dal.aws.keys import ERASING, PROFILE_SK, SESSION_SK
from chatvault.dal.aws.retry import storage_errors, write_batch
from chatvault.dal.aws.transaction import Transaction
from chatvault.dal.conversation_keys import KeyItem
from chatvault.dal.session_conditions import owns
from chatvault.models.domain import (
    AuditEntry,
    Principal,
)


@storage_errors
def mark_erasing(session_id: str, principal: Principal | None, at: datetime, keep_until: datetime) -> bool:
    """Step 1: destroy the conversation's key and make the session unreadable at once, freezing its
    message count, in one transaction: the key item deleted (from then on whatever is left of the
    conversation, here, in a backup or a restore, opens under no key), the session item marked. Its
    TTL moves to `keep_until`, so the mark outlives the erase. Idempotent: a retried delete keeps the
    first mark (`erase_items` reads it). False if the session is gone or not the caller's (`principal`
    None: an operator's erase, whoever owns it)."""
    tx = Transaction()
    tx.delete("key", KeyItem(session_id))
    tx.update(
        "session",
        SessionItem(session_id, SESSION_SK),
        [
            SessionItem.deleted_at.set(SessionItem.deleted_at | at),
            SessionItem.erased_messages.set(SessionItem.erased_messages | SessionItem.message_count),
            SessionItem.erasing.set(ERASING),
            SessionItem.expires_at.set(keep_until),
        ],
        condition=(
            SessionItem.pk.exists() & owns(principal) if principal is not None else SessionItem.pk.exists()
        ),
    )
    try:
        return tx.committed("session")
    finally:
        conversation_keys.forget(session_id)


@storage_errors
def stale_erasures(before: datetime, limit: int = 1000) -> list[str]:
    """Sessions whose delete began before `before` and never finished (the Lambda died)."""
    connection.of(ErasingMark)
    marked = ErasingMark.by_erasing.query(ERASING, ErasingMark.deleted_at < before, limit=limit)
    return [item.pk for item in marked]


@storage_errors
def erase_items(session_id: str, workers: int) -> tuple[int, tuple[datetime, int] | None]:
    """Step 2: delete every message and marker of the session, 25 keys a request, in parallel: every
    item of its partition but the session item and its profile, as keys, from one strongly consistent
    Query a page. Returns how many were deleted, and the session's mark (when its delete began, how
    many messages it held), read by the same Query (None when the session item is gone)."""
    connection.of(StoredKey)
    mark: tuple[datetime, int] | None = None
    futures = []
    keys = StoredKey.query(
        session_id, consistent_read=True, attributes_to_get=["pk", "sk", "deleted_at", "erased_messages"]
    )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunk: list[StoredKey] = []
        for key in keys:
            if key.sk == SESSION_SK:
                if key.deleted_at is not None:
                    mark = key.deleted_at, int(key.erased_messages or 0)
                continue
            if key.sk == PROFILE_SK:
                continue
            chunk.append(StoredKey(key.pk, key.sk))
            if len(chunk) == 25:
                futures.append(pool.submit(write_batch, StoredKey, deletes=chunk))
                chunk = []
        if chunk:
            futures.append(pool.submit(write_batch, StoredKey, deletes=chunk))
        return sum(f.result() for f in futures), mark


@storage_errors
def remove(session_id: str, entry: AuditEntry) -> bool:
    """Step 3: remove the (marked) session item and its profile, and record the deletion, together.
    False when a concurrent erase of the same session (a second tap of the panic button, the sweep)
    removed it first: that one recorded the deletion, this one writes nothing."""

    tx = Transaction()
    tx.delete("profile", ProfileItem(session_id, PROFILE_SK))
    tx.delete("session", SessionItem(session_id, SESSION_SK), condition=SessionItem.deleted_at.exists())
    tx.save("audit", audit.item_of(entry))
    return tx.committed("session")
