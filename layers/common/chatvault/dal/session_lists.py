"""Sessions found by the many: a page of an owner's live sessions (the owner index), every id an owner
has on disk (erase-all), and which of a set of sessions are live (the orphan sweep)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatvault.core.errors import InvalidCursorError
from chatvault.dal import conversation_keys
from chatvault.dal.aws import side_reads
from chatvault.dal.aws.items import (
    ProfileItem,
    SessionItem,
)
from chatvault.dal.aws.keys import PROFILE_SK, SESSION_SK
from chatvault.dal.aws.retry import storage_errors
from chatvault.dal.session_items import (
    profile_sealed,
    record_of,
)
from chatvault.models.domain import (
    SessionRecord,
)


@storage_errors
def live_ids(session_ids: list[str], at: datetime) -> set[str]:
    """Which of these sessions exist, have not expired and are not being erased: strongly consistent
    BatchGetItems of their session items' state (100 keys a request, unprocessed keys resent)."""
    states = SessionItem.batch_get(
        [(sid, SESSION_SK) for sid in session_ids],
        consistent_read=True,
        attributes_to_get=["pk", "sk", "kind", "expires_at", "deleted_at"],
    )
    return {item.pk for item in states if item.deleted_at is None and item.expires_at > at}


@storage_errors
def list_by_owner(
    owner_id: str, at: datetime, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[SessionRecord], dict[str, Any] | None]:
    """A page of the owner's live sessions, newest activity first, and the key to continue from: one
    Query of the owner index, then the page's profiles (one BatchGetItem) and their keys (one
    BatchGetItem of the keys table, for those this process does not hold) side by side. A keyed
    session whose key is gone is left out."""
    if start_key is not None and not _owner_key_of(start_key, owner_id):
        raise InvalidCursorError()
    results = SessionItem.by_owner.query(
        owner_id,
        scan_index_forward=False,
        limit=limit,
        page_size=limit,
        last_evaluated_key=start_key,
        filter_condition=(SessionItem.expires_at > at) & SessionItem.deleted_at.does_not_exist(),
    )
    heads = list(results)
    keys = side_reads.in_background(
        conversation_keys.read_many, [h.pk for h in heads if h.key_id is not None], at
    )
    profiles = {
        item.pk: item
        for item in ProfileItem.batch_get([(h.pk, PROFILE_SK) for h in heads], consistent_read=True)
    }
    found = keys.result()
    stale = [h.pk for h in heads if h.key_id is not None and not _names(found.get(h.pk), h)]
    if stale:  # keys cached before their session was made again under the same id: read afresh
        for session_id in stale:
            conversation_keys.forget(session_id)
        found.update(conversation_keys.read_many(stale, at))
    late = [h.pk for h in heads if h.key_id is None and profile_sealed(profiles.get(h.pk))]
    if late:  # legacy in the (lagging) index, sealed since (`_sealed_since`): the keys stored now
        for session_id in late:
            conversation_keys.forget(session_id)
        found.update(conversation_keys.read_many(late, at))
    records = [
        record_of(h, profiles.get(h.pk), found.get(h.pk))
        for h in heads
        if h.key_id is None or _names(found.get(h.pk), h)  # a keyed session without its key: gone
    ]
    return [r for r in records if r.is_live(at)], results.last_evaluated_key


def _names(key: bytes | None, item: SessionItem) -> bool:
    return key is not None and conversation_keys.key_id(key) == item.key_id


@storage_errors
def owned_ids(owner_id: str) -> list[str]:
    """Every session of the owner still on disk, live, expired or being erased: the owner index's
    pages (eventually consistent, as every index read: a session created a moment ago may be
    missing; a retry of erase-all finds it)."""
    return [item.pk for item in SessionItem.by_owner.query(owner_id, attributes_to_get=["pk", "sk", "kind"])]


def _owner_key_of(key: dict[str, Any], owner_id: str) -> bool:
    """A start key is only accepted inside the owner's own index partition, with the expected shape."""
    expected = {"pk", "sk", "owner_key", "activity_at"}
    if set(key) != expected or not all(isinstance(v, dict) and set(v) == {"S"} for v in key.values()):
        return False
    return bool(key["owner_key"]["S"] == owner_id and key["sk"]["S"] == SESSION_SK)
