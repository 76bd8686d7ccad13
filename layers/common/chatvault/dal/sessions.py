"""Session items: create, read, update, list by owner, and the erase steps of the panic button."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, cast

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chatvault.clock import iso
from chatvault.dal import audit, limits
from chatvault.dal.clients import client
from chatvault.dal.items import ChatItem, GuardItem, SessionItem
from chatvault.dal.keys import ERASING, ERASING_INDEX, GUARD_SK, SESSION_SK
from chatvault.dal.retry import (
    any_condition_failure,
    batch_write_all,
    condition_failure,
    storage_errors,
    transact,
)
from chatvault.errors import InvalidCursorError, RateLimitedError, SessionExistsError, StorageUnavailableError
from chatvault.models.domain import (
    AuditEntry,
    NewSession,
    Principal,
    RateCharge,
    SessionChanges,
    SessionRecord,
)


def record_of(item: SessionItem) -> SessionRecord:
    return SessionRecord(
        session_id=item.pk,
        token_hash=item.token_hash,
        owner_id=item.owner_id,
        title=item.title,
        metadata=_plain_map(item.metadata),
        status=item.status,  # type: ignore[arg-type]
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_message_at=item.last_message_at,
        message_count=int(item.message_count),
        preview=item.preview,
        expires_at=item.expires_at,
        uploads_issued=int(item.uploads_issued or 0),
        deleted_at=item.deleted_at,
        last_position=item.last_position,
        append_tat=int(item.append_tat) if item.append_tat is not None else None,
    )


def _plain_map(value: Any) -> dict[str, str]:
    """A raw MapAttribute reads back as a MapAttribute; a freshly assigned one is still a dict."""
    raw = value.as_dict() if isinstance(value, MapAttribute) else value  # type: ignore[no-untyped-call]
    return {str(k): str(v) for k, v in (raw or {}).items()}


def owns(principal: Principal) -> Condition:
    if principal.owner_id is not None:
        return cast(Condition, SessionItem.owner_id == principal.owner_id)
    return cast(Condition, SessionItem.token_hash == (principal.token_hash or ""))


def writable(principal: Principal, at: datetime) -> Condition:
    """What every write to a session needs: it is the caller's, live (not expired, not being erased)
    and active."""
    return cast(
        Condition,
        SessionItem.pk.exists()
        & owns(principal)
        & SessionItem.deleted_at.does_not_exist()
        & (SessionItem.expires_at > at)
        & (SessionItem.status == "active"),
    )


def _vacant(at: datetime) -> Condition:
    """No item, or one whose TTL has passed but that DynamoDB has not removed yet."""
    return cast(Condition, SessionItem.pk.does_not_exist() | (SessionItem.expires_at < at))


@storage_errors
def create(new: NewSession, charge: RateCharge, entry: AuditEntry) -> SessionRecord:
    """Session, guard, audit entry and the client's rate-limit charge: one transaction."""
    session = SessionItem(
        new.session_id,
        SESSION_SK,
        token_hash=new.token_hash,
        owner_id=new.owner_id,
        owner_key=new.owner_id,
        activity_at=iso(new.created_at) if new.owner_id else None,
        title=new.title,
        metadata=dict(new.metadata),
        status="active",
        created_at=new.created_at,
        updated_at=new.created_at,
        message_count=0,
        expires_at=new.expires_at,
        uploads_issued=0,
    )
    guard = GuardItem(
        new.session_id,
        GUARD_SK,
        token_hash=new.token_hash,
        owner_id=new.owner_id,
        expires_at=new.expires_at,
    )

    def build(tx: TransactWrite) -> None:
        tx.save(session, condition=_vacant(new.created_at))
        tx.save(guard, condition=GuardItem.pk.does_not_exist() | (GuardItem.expires_at < new.created_at))
        tx.save(audit.item_of(entry))
        limits.add_charge(tx, charge)  # updates come after the three puts: index 3

    try:
        transact(build)
    except TransactWriteError as exc:
        if condition_failure(exc, 3):
            raise RateLimitedError(charge.retry_after) from exc
        if condition_failure(exc, 0) or condition_failure(exc, 1):
            raise SessionExistsError() from exc
        raise
    return record_of(session)


@storage_errors
def get(session_id: str) -> SessionRecord | None:
    try:
        return record_of(SessionItem.get(session_id, SESSION_SK, consistent_read=True))
    except DoesNotExist:
        return None


@storage_errors
def update(
    session_id: str,
    principal: Principal,
    changes: SessionChanges,
    at: datetime,
    expires_at: datetime,
    *,
    entry: AuditEntry | None = None,
) -> SessionRecord | None:
    """Apply a PATCH in one UpdateItem. None when the session is not live, not the caller's, or ended
    (the caller reads it to tell which). With an audit entry (ending a session), the update and the
    entry are one transaction and the result is read back."""
    item = SessionItem(session_id, SESSION_SK)
    actions: list[Any] = [SessionItem.updated_at.set(at), SessionItem.expires_at.set(expires_at)]
    if principal.owner_id is not None:
        actions.append(SessionItem.activity_at.set(iso(at)))
    if "title" in changes.fields:
        actions.append(SessionItem.title.set(changes.title) if changes.title else SessionItem.title.remove())
    if "metadata" in changes.fields:
        actions.append(SessionItem.metadata.set(dict(changes.metadata or {})))
    if changes.end:
        actions.append(SessionItem.status.set("ended"))
    condition = writable(principal, at)
    if entry is not None:

        def build(tx: TransactWrite) -> None:
            tx.save(audit.item_of(entry))
            tx.update(item, actions=actions, condition=condition)

        try:
            transact(build)
        except TransactWriteError as exc:
            if condition_failure(exc, 1):
                return None
            raise
        return get(session_id)
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return record_of(item)


@storage_errors
def record_upload(
    session_id: str, principal: Principal, at: datetime, charge: RateCharge, entry: AuditEntry
) -> bool:
    """Count an issued upload on a live, active session of the caller, with its audit entry and the
    client's rate-limit charge, in one transaction. False when the session refused it."""
    condition = writable(principal, at)

    def build(tx: TransactWrite) -> None:
        tx.save(audit.item_of(entry))
        tx.update(
            SessionItem(session_id, SESSION_SK),
            actions=[SessionItem.uploads_issued.add(1)],
            condition=condition,
        )
        limits.add_charge(tx, charge)

    try:
        transact(build)
    except TransactWriteError as exc:
        if condition_failure(exc, 1):
            return False
        if condition_failure(exc, 2):
            raise RateLimitedError(charge.retry_after) from exc
        raise
    return True


@storage_errors
def live_ids(session_ids: list[str], at: datetime) -> set[str]:
    """Which of these sessions exist, have not expired and are not being erased: strongly consistent
    reads, 100 keys a BatchGetItem, unprocessed keys retried."""
    table = ChatItem.Meta.table_name
    live: set[str] = set()
    for start in range(0, len(session_ids), 100):
        pending: dict[str, Any] = {
            table: {
                "Keys": [
                    {"pk": {"S": sid}, "sk": {"S": SESSION_SK}} for sid in session_ids[start : start + 100]
                ],
                "ProjectionExpression": "pk, expires_at, deleted_at",
                "ConsistentRead": True,
            }
        }
        for attempt in range(8):
            response = client("dynamodb").batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(table, []):
                if "deleted_at" not in item and int(item["expires_at"]["N"]) > at.timestamp():
                    live.add(item["pk"]["S"])
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(1.0, 0.02 * 2**attempt))
        else:
            raise StorageUnavailableError()
    return live


@storage_errors
def list_by_owner(
    owner_id: str, at: datetime, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[SessionRecord], dict[str, Any] | None]:
    """A page of the owner's live sessions, newest activity first, and the key to continue from."""
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
    records = [record_of(item) for item in results]
    return records, results.last_evaluated_key


def _owner_key_of(key: dict[str, Any], owner_id: str) -> bool:
    """A start key is only accepted inside the owner's own index partition, with the expected shape."""
    expected = {"pk", "sk", "owner_key", "activity_at"}
    if set(key) != expected or not all(isinstance(v, dict) and set(v) == {"S"} for v in key.values()):
        return False
    return bool(key["owner_key"]["S"] == owner_id and key["sk"]["S"] == SESSION_SK)


# ---- the panic button: mark, erase, remove -------------------------------------------------------


@storage_errors
def mark_erasing(session_id: str, principal: Principal, at: datetime, guard_expires_at: datetime) -> bool:
    """Step 1: make the session unreadable at once (session and guard) and freeze its message count.
    Idempotent: a retried delete keeps the first mark. False if the session is gone or not the caller's."""
    session = SessionItem(session_id, SESSION_SK)
    guard = GuardItem(session_id, GUARD_SK)

    def build(tx: TransactWrite) -> None:
        tx.update(
            session,
            actions=[
                SessionItem.deleted_at.set(SessionItem.deleted_at | at),
                SessionItem.erased_messages.set(SessionItem.erased_messages | SessionItem.message_count),
                SessionItem.erasing.set(ERASING),
            ],
            condition=SessionItem.pk.exists() & owns(principal),
        )
        tx.update(
            guard,
            actions=[
                GuardItem.deleted_at.set(GuardItem.deleted_at | at),
                GuardItem.expires_at.set(GuardItem.expires_at | guard_expires_at),
                GuardItem.kind.set(GuardItem),  # type: ignore[arg-type]
            ],
        )

    try:
        transact(build)
    except TransactWriteError as exc:
        if any_condition_failure(exc):
            return False
        raise
    return True


@storage_errors
def stale_erasures(before: datetime, limit: int = 1000) -> list[str]:
    """Sessions whose delete began before `before` and never finished (the Lambda died)."""
    response = client("dynamodb").query(
        TableName=ChatItem.Meta.table_name,
        IndexName=ERASING_INDEX,
        KeyConditionExpression="erasing = :e AND deleted_at < :before",
        ExpressionAttributeValues={
            ":e": {"S": ERASING},
            ":before": {"S": SessionItem.deleted_at.serialize(before)},  # type: ignore[no-untyped-call]
        },
        Limit=limit,
    )
    return [item["pk"]["S"] for item in response.get("Items", [])]


def _partition_keys(session_id: str) -> Iterator[dict[str, Any]]:
    """Every key in the session's partition but the session item and guard, strongly consistent."""
    paginator = client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=ChatItem.Meta.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": session_id}},
        ProjectionExpression="pk, sk",
        ConsistentRead=True,
    )
    for page in pages:
        for key in page.get("Items", []):
            if key["sk"]["S"] not in (SESSION_SK, GUARD_SK):
                yield key


@storage_errors
def erase_items(session_id: str, workers: int) -> int:
    """Step 2: delete every message and marker of the session, 25 keys a request, in parallel."""
    table = ChatItem.Meta.table_name
    batch: list[dict[str, Any]] = []
    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for key in _partition_keys(session_id):
            batch.append(key)
            if len(batch) == 25:
                futures.append(
                    pool.submit(batch_write_all, table, [{"DeleteRequest": {"Key": k}} for k in batch])
                )
                batch = []
        if batch:
            futures.append(
                pool.submit(batch_write_all, table, [{"DeleteRequest": {"Key": k}} for k in batch])
            )
        return sum(f.result() for f in futures)


@storage_errors
def remove(session_id: str, entry: AuditEntry) -> bool:
    """Step 3: remove the guard and the (marked) session item, and record the deletion, together.
    False when a concurrent erase of the same session (a second tap of the panic button, the sweep)
    removed it first: that one recorded the deletion, this one writes nothing."""

    def build(tx: TransactWrite) -> None:
        tx.delete(GuardItem(session_id, GUARD_SK))
        tx.delete(SessionItem(session_id, SESSION_SK), condition=SessionItem.deleted_at.exists())
        tx.save(audit.item_of(entry))

    try:
        transact(build)
    except TransactWriteError as exc:
        if any_condition_failure(exc):
            return False
        raise
    return True


@storage_errors
def erased_counts(session_id: str) -> tuple[datetime, int] | None:
    """The mark of a session being erased: when, and how many messages it held."""
    try:
        item = SessionItem.get(
            session_id,
            SESSION_SK,
            consistent_read=True,
            attributes_to_get=["pk", "sk", "kind", "deleted_at", "erased_messages"],
        )
    except DoesNotExist:
        return None
    if item.deleted_at is None:
        return None
    return item.deleted_at, int(item.erased_messages or 0)
