"""Sessions: create, read, update, list by owner, and the erase steps of the panic button.

A session is two items: the session item (`#S`: owner, state, counters; small, rewritten by every
append) and its profile (`!P`: title and metadata, up to ~37 KB; written by create and PATCH only), so
an append's cost does not grow with the title and metadata. Reads fetch both in one BatchGetItem."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import batched
from typing import Any, cast

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition

from chatvault.clock import iso
from chatvault.dal import audit, connection, limits
from chatvault.dal.items import ChatItem, ErasingMark, ProfileItem, SessionItem, StoredKey, UploadItem
from chatvault.dal.keys import ERASING, PROFILE_SK, SESSION_SK, UPLOAD_PREFIX
from chatvault.dal.retry import CONDITION_CHECK_FAILED, storage_errors, write_batch
from chatvault.dal.transaction import Refused, Transaction
from chatvault.errors import InvalidCursorError, RateLimitedError, SessionExistsError, StorageUnavailableError
from chatvault.models.domain import (
    AuditEntry,
    NewSession,
    Principal,
    RateCharge,
    SessionChanges,
    SessionRecord,
    UploadRecord,
)
from chatvault.settings import get_settings


def profile_expiry(session_expires_at: datetime) -> datetime:
    """The profile outlives the session item by a little (a day, or the retention if shorter), so
    that appends, which slide the session's expiry, need to refresh it only once in that time."""
    slack = timedelta(seconds=min(86_400, get_settings().retention_seconds))
    return session_expires_at + slack


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def as_stored(expiry: datetime) -> datetime:
    """An expiry as a TTL attribute stores it (whole seconds), as every read returns it."""
    return datetime.fromtimestamp(epoch(expiry), tz=UTC)


def record_of(item: SessionItem, profile: ProfileItem | None = None) -> SessionRecord:
    """The session as the logic sees it; without its profile (`title` None, `metadata` empty) when
    the read did not fetch it (appends, pages: they only need who owns it and its state)."""
    return SessionRecord(
        session_id=item.pk,
        token_hash=item.token_hash,
        owner_id=item.owner_id,
        title=profile.title if profile is not None else None,
        metadata=_plain_map(profile.metadata) if profile is not None else {},
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
        profile_expires_at=int(item.profile_expires_at) if item.profile_expires_at is not None else None,
        reply_lock=item.reply_lock,
        reply_until=int(item.reply_until) if item.reply_until is not None else None,
        reply_stopped=item.reply_stopped,
    )


def _plain_map(value: Any) -> dict[str, str]:
    """A raw MapAttribute reads back as a MapAttribute; a freshly assigned one is still a dict."""
    raw = value.as_dict() if isinstance(value, MapAttribute) else value  # type: ignore[no-untyped-call]
    return {str(k): str(v) for k, v in (raw or {}).items()}


def owns(principal: Principal) -> Condition:
    """The session item exists and is the principal's (Principal.may_use, as a condition)."""
    if principal.service:
        return cast(Condition, SessionItem.pk.exists())
    if principal.owner_id is not None:
        return cast(Condition, SessionItem.owner_id == principal.owner_id)
    return cast(
        Condition,
        (SessionItem.token_hash == (principal.token_hash or "")) & SessionItem.owner_id.does_not_exist(),
    )


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
    """Session, profile, audit entry and the client's rate-limit charge: one transaction.

    Every attempt counts against the client's limit, whatever its answer: when the id is taken, the
    refused transaction counted nothing, so the attempt is charged alone (one more UpdateItem, on the
    refused path only) before it is answered 409; over the limit, it is answered 429 instead, so a
    client over its limit learns nothing about which ids exist."""
    profile_expires_at = profile_expiry(new.expires_at)
    session = SessionItem(
        new.session_id,
        SESSION_SK,
        token_hash=new.token_hash,
        owner_id=new.owner_id,
        owner_key=new.owner_id,
        activity_at=iso(new.created_at) if new.owner_id else None,
        status="active",
        created_at=new.created_at,
        updated_at=new.created_at,
        message_count=0,
        expires_at=new.expires_at,
        uploads_issued=0,
        profile_expires_at=epoch(profile_expires_at),
    )
    profile = ProfileItem(
        new.session_id,
        PROFILE_SK,
        title=new.title,
        metadata=dict(new.metadata),
        expires_at=profile_expires_at,
    )

    tx = Transaction()
    tx.save("session", session, condition=_vacant(new.created_at))
    # a profile left by an expired session (its TTL runs a little longer) is replaced
    tx.save("profile", profile)
    tx.save("audit", audit.item_of(entry))
    limits.add_charge(tx, charge)
    try:
        tx.commit()
    except Refused as refused:
        if refused.failed(limits.CHARGE):
            raise RateLimitedError(charge.retry_after) from refused
        if refused.failed("session"):
            if not limits.charge_alone(charge):
                raise RateLimitedError(charge.retry_after) from refused
            raise SessionExistsError() from refused
        raise
    return record_of(session, profile)


@storage_errors
def get(session_id: str) -> SessionRecord | None:
    """The session with its profile: one strongly consistent BatchGetItem of both items."""
    session: SessionItem | None = None
    profile: ProfileItem | None = None
    for item in ChatItem.batch_get(
        [(session_id, SESSION_SK), (session_id, PROFILE_SK)], consistent_read=True
    ):
        if isinstance(item, SessionItem):
            session = item
        elif isinstance(item, ProfileItem):
            profile = item
    return record_of(session, profile) if session is not None else None


@storage_errors
def state(session_id: str) -> SessionRecord | None:
    """The session item alone (who owns it, its state; no profile): one strongly consistent GetItem."""
    try:
        return record_of(SessionItem.get(session_id, SESSION_SK, consistent_read=True))
    except DoesNotExist:
        return None


@lru_cache(maxsize=1)
def _side_reads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="session-read")


def concurrently(
    read: Callable[[str], SessionRecord | None], session_id: str
) -> Future[SessionRecord | None]:
    """Send a read of the session now, alongside a write or a query (one round trip of latency for
    both); the caller takes its result when it needs it."""
    return in_background(read, session_id)


def in_background[**P, R](read: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
    """Any read, sent now beside another request (as `concurrently`)."""
    return _side_reads().submit(read, *args, **kwargs)


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
    """Apply a PATCH in one transaction: the session item (conditioned on the caller and its state),
    the profile (its fields, and its TTL, which must outlive the session's new expiry) and, when
    ending the session, the audit entry. None when the session is not live, not the caller's, or
    ended (the caller reads it to tell which).

    The answer is the session as this write left it: the session is read concurrently with the write
    and the fields the write set are laid over what was read (fields it did not set are the same
    before and after it), so the PATCH costs one round trip of latency."""
    before = concurrently(get, session_id)
    profile_expires_at = profile_expiry(expires_at)
    actions: list[Any] = [
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(expires_at),
        SessionItem.profile_expires_at.set(epoch(profile_expires_at)),
    ]
    if principal.owner_id is not None:
        actions.append(SessionItem.activity_at.set(iso(at)))
    if changes.end:
        actions.append(SessionItem.status.set("ended"))
    profile_actions: list[Any] = [ProfileItem.expires_at.set(profile_expires_at)]
    if "title" in changes.fields:
        profile_actions.append(
            ProfileItem.title.set(changes.title) if changes.title else ProfileItem.title.remove()
        )
    if "metadata" in changes.fields:
        profile_actions.append(ProfileItem.metadata.set(dict(changes.metadata or {})))

    tx = Transaction()
    if entry is not None:
        tx.save("audit", audit.item_of(entry))
    tx.update("session", SessionItem(session_id, SESSION_SK), actions, condition=writable(principal, at))
    tx.update("profile", ProfileItem(session_id, PROFILE_SK), profile_actions)
    read = _commit_beside(tx, before, session_id)
    if read is None:
        return None
    written: dict[str, Any] = {"updated_at": at, "expires_at": as_stored(expires_at)}
    if changes.end:
        written["status"] = "ended"
    if "title" in changes.fields:
        written["title"] = changes.title or None
    if "metadata" in changes.fields:
        written["metadata"] = dict(changes.metadata or {})
    return read.model_copy(update=written)


@storage_errors
def claim(
    session_id: str, token_hash: str, owner_id: str, at: datetime, entry: AuditEntry
) -> SessionRecord | None:
    """AuthMode=both: the anonymous session becomes `owner_id`'s, in one transaction: the session item
    (conditioned on its token, no owner yet, and live) gains its owner and enters the owner's index,
    and the audit entry is written. The token stops working at once: a token opens only a session
    without an owner (`owns`). None when refused (the caller reads it to tell why).

    The answer is the session as read alongside the write: a claim changes no field a Session shows."""
    before = concurrently(get, session_id)
    condition = (
        owns(Principal(token_hash=token_hash))
        & SessionItem.deleted_at.does_not_exist()
        & (SessionItem.expires_at > at)
    )
    tx = Transaction()
    tx.save("audit", audit.item_of(entry))
    tx.update(
        "session",
        SessionItem(session_id, SESSION_SK),
        [
            SessionItem.owner_id.set(owner_id),
            SessionItem.owner_key.set(owner_id),
            SessionItem.activity_at.set(iso(at)),
        ],
        condition=condition,
    )
    read = _commit_beside(tx, before, session_id)
    return read.model_copy(update={"owner_id": owner_id}) if read is not None else None


def _commit_beside(
    tx: Transaction, before: Future[SessionRecord | None], session_id: str
) -> SessionRecord | None:
    """Commit a write to the session (its item named "session") and take the read sent beside it:
    None if the session's condition refused the write; else the session as that read saw it, or as a
    new read finds it when that one failed or found none (the write stands: read what it left rather
    than answer 503 for a done write)."""
    try:
        tx.commit()
    except Refused as refused:
        if refused.failed("session"):
            return None
        raise
    try:
        read = before.result()
    except StorageUnavailableError:
        read = None
    return read if read is not None else get(session_id)


@storage_errors
def record_upload(
    session_id: str,
    principal: Principal,
    at: datetime,
    charge: RateCharge,
    entry: AuditEntry,
    *,
    upload: UploadRecord,
) -> bool:
    """Count an issued upload on a live, active session of the caller, with its record (`pending`),
    its audit entry and the client's rate-limit charge, in one transaction. False when the session
    refused it."""
    tx = Transaction()
    tx.save("audit", audit.item_of(entry))
    tx.save(
        "upload",
        UploadItem(
            upload.session_id,
            UPLOAD_PREFIX + upload.upload_id,
            content_type=upload.content_type,
            size=upload.size,
            status=upload.status,
            created_at=upload.created_at,
            expires_at=upload.expires_at,
        ),
    )
    tx.update(
        "session",
        SessionItem(session_id, SESSION_SK),
        [SessionItem.uploads_issued.add(1)],
        condition=writable(principal, at),
    )
    limits.add_charge(tx, charge)
    try:
        tx.commit()
    except Refused as refused:
        if refused.failed("session"):
            return False
        if refused.failed(limits.CHARGE):
            raise RateLimitedError(charge.retry_after) from refused
        raise
    return True


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
    heads = list(results)
    profiles = {
        item.pk: item
        for item in ProfileItem.batch_get([(h.pk, PROFILE_SK) for h in heads], consistent_read=True)
    }
    return [record_of(h, profiles.get(h.pk)) for h in heads], results.last_evaluated_key


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


# ---- the panic button: mark, erase, remove -------------------------------------------------------


@storage_errors
def mark_erasing(
    session_id: str, principal: Principal | None, at: datetime, keep_until: datetime
) -> tuple[datetime, int] | None:
    """Step 1: make the session unreadable at once and freeze its message count, in one UpdateItem
    that answers with the mark: (when the delete began, how many messages the session held). Its TTL
    moves to `keep_until`, so the mark outlives the erase. Idempotent: a retried delete keeps the
    first mark. None if the session is gone or not the caller's (`principal` None: an operator's
    erase, whoever owns it)."""
    item = SessionItem(session_id, SESSION_SK)
    try:
        item.update(
            actions=[
                SessionItem.deleted_at.set(SessionItem.deleted_at | at),
                SessionItem.erased_messages.set(SessionItem.erased_messages | SessionItem.message_count),
                SessionItem.erasing.set(ERASING),
                SessionItem.expires_at.set(keep_until),
            ],
            condition=(
                SessionItem.pk.exists() & owns(principal)
                if principal is not None
                else SessionItem.pk.exists()
            ),
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_CHECK_FAILED:
            return None
        raise
    return item.deleted_at or at, int(item.erased_messages or 0)


@storage_errors
def stale_erasures(before: datetime, limit: int = 1000) -> list[str]:
    """Sessions whose delete began before `before` and never finished (the Lambda died)."""
    connection.of(ErasingMark)
    marked = ErasingMark.by_erasing.query(ERASING, ErasingMark.deleted_at < before, limit=limit)
    return [item.pk for item in marked]


def _erasable(session_id: str) -> Iterator[StoredKey]:
    """Every item of the session's partition but the session item and its profile (the messages and
    markers, and anything else stored there), as keys: one strongly consistent Query a page."""
    keys = StoredKey.query(session_id, consistent_read=True, attributes_to_get=["pk", "sk"])
    return (key for key in keys if key.sk not in (SESSION_SK, PROFILE_SK))


@storage_errors
def erase_items(session_id: str, workers: int) -> int:
    """Step 2: delete every message and marker of the session, 25 keys a request, in parallel."""
    connection.of(StoredKey)
    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in batched(_erasable(session_id), 25, strict=False):
            futures.append(pool.submit(write_batch, StoredKey, deletes=chunk))
        return sum(f.result() for f in futures)


@storage_errors
def remove(session_id: str, entry: AuditEntry) -> bool:
    """Step 3: remove the (marked) session item and its profile, and record the deletion, together.
    False when a concurrent erase of the same session (a second tap of the panic button, the sweep)
    removed it first: that one recorded the deletion, this one writes nothing."""

    tx = Transaction()
    tx.delete("profile", ProfileItem(session_id, PROFILE_SK))
    tx.delete("session", SessionItem(session_id, SESSION_SK), condition=SessionItem.deleted_at.exists())
    tx.save("audit", audit.item_of(entry))
    try:
        tx.commit()
    except Refused:
        return False
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
