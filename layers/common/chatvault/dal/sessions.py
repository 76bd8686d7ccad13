"""Sessions: create, read, update, list by owner, and the erase steps of the panic button.

A session is two items: the session item (`#S`: owner, state, counters; small, rewritten by every
append) and its profile (`!P`: title and metadata, up to ~37 KB; written by create and PATCH only), so
an append's cost does not grow with the title and metadata. Reads fetch both in one BatchGetItem.

Its title, metadata and preview are sealed under the conversation's own key (dal/aws/items.py), made by
the create and written in its transaction to the keys table. A read fetches the key beside the
session (`KeySoon`: one GetItem sent with the read, none when this process holds it), and a keyed
session whose key is gone (erased, expired, or a restored copy of an erased one) reads as missing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chatvault.core import clock
from chatvault.core.clock import iso
from chatvault.core.errors import (
    InvalidCursorError,
    RateLimitedError,
    SessionExistsError,
    StorageUnavailableError,
)
from chatvault.dal import audit, conversation_keys, limits
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import (
    SEALED_METADATA,
    SEALED_PREVIEW,
    SEALED_TITLE,
    ChatItem,
    ErasingMark,
    ProfileItem,
    SessionItem,
    StoredKey,
    UploadItem,
    compact_json,
    open_text,
    seal_text,
)
from chatvault.dal.aws.keys import ERASING, PROFILE_SK, SESSION_SK, UPLOAD_PREFIX
from chatvault.dal.aws.retry import storage_errors, write_batch
from chatvault.dal.aws.transaction import Refused, Transaction
from chatvault.dal.conversation_keys import KeyItem
from chatvault.models.domain import (
    AuditEntry,
    NewSession,
    Principal,
    RateCharge,
    SessionChanges,
    SessionRecord,
    UploadRecord,
    retention_of,
)


def profile_expiry(session_expires_at: datetime, retention: timedelta) -> datetime:
    """The profile outlives the session item by a little (a day, or the session's retention if
    shorter), so that appends, which slide the session's expiry, need to refresh it only once in that
    time."""
    return session_expires_at + min(timedelta(days=1), retention)


def key_slack(retention: timedelta) -> timedelta:
    """How far a key's TTL may trail its session's (of this retention): an append moves the key's
    TTL only when the session's new expiry would pass it by more (about once an hour of activity:
    dal/messages.py), so a conversation becomes unreadable at most this much before its session
    expires: an hour, or a 24th of the retention if shorter."""
    return timedelta(seconds=min(3600, int(retention.total_seconds()) // 24))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def as_stored(expiry: datetime) -> datetime:
    """An expiry as a TTL attribute stores it (whole seconds), as every read returns it."""
    return datetime.fromtimestamp(epoch(expiry), tz=UTC)


def record_of(
    item: SessionItem, profile: ProfileItem | None = None, key: bytes | None = None
) -> SessionRecord:
    """The session as the logic sees it; without its profile (`title` None, `metadata` empty) when
    the read did not fetch it (appends, pages: they only need who owns it and its state), and without
    its preview when the read did not fetch its key. `expires_at` is when the conversation becomes
    unreadable: the session's expiry, or its key's when that falls first."""
    expires_at = item.expires_at
    if item.key_expires_at is not None:
        expires_at = min(expires_at, datetime.fromtimestamp(int(item.key_expires_at), tz=UTC))
    preview: str | None = item.preview
    if item.sealed_preview is not None:
        preview = open_text(key, item.pk, SESSION_SK, SEALED_PREVIEW, item.sealed_preview) if key else None
    title, metadata = (None, {}) if profile is None else _profile_fields(profile, key)
    return SessionRecord(
        session_id=item.pk,
        token_hash=item.token_hash,
        owner_id=item.owner_id,
        title=title,
        metadata=metadata,
        status=item.status,  # type: ignore[arg-type]
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_message_at=item.last_message_at,
        message_count=int(item.message_count),
        preview=preview,
        expires_at=expires_at,
        uploads_issued=int(item.uploads_issued or 0),
        deleted_at=item.deleted_at,
        last_position=item.last_position,
        append_tat=int(item.append_tat) if item.append_tat is not None else None,
        profile_expires_at=int(item.profile_expires_at) if item.profile_expires_at is not None else None,
        reply_lock=item.reply_lock,
        reply_until=int(item.reply_until) if item.reply_until is not None else None,
        reply_stopped=item.reply_stopped,
        key_id=item.key_id,
        key_expires_at=int(item.key_expires_at) if item.key_expires_at is not None else None,
        temporary=bool(item.temporary),
        retention_hours=int(item.retention_hours) if item.retention_hours is not None else None,
    )


def _profile_fields(profile: ProfileItem, key: bytes | None) -> tuple[str | None, dict[str, str]]:
    """The title and metadata: sealed (a keyed session's) or plaintext (a legacy one's)."""
    title = profile.title
    metadata = plain_map(profile.metadata)
    if key is not None:
        if profile.sealed_title is not None:
            title = open_text(key, profile.pk, PROFILE_SK, SEALED_TITLE, profile.sealed_title)
        if profile.sealed_metadata is not None:
            opened = json.loads(
                open_text(key, profile.pk, PROFILE_SK, SEALED_METADATA, profile.sealed_metadata)
            )
            metadata = {str(k): str(v) for k, v in opened.items()}
    return title, metadata


class KeyGone(Exception):
    """A keyed session whose key is gone: erased, expired, or the session was made again since under
    the same id. Nothing of it can be read: it is answered as missing."""


class KeySoon:
    """A session's key, sent for now beside the read that fetches the session (one GetItem, one round
    trip of latency for both; none when this process holds the key), and checked against the session
    item once that arrives (`named`)."""

    def __init__(self, session_id: str, at: datetime | None = None) -> None:
        self.session_id = session_id
        self.at = at or clock.now()
        self._cached = conversation_keys.cached(session_id, self.at)
        self._read: Future[bytes | None] | None = None
        if not conversation_keys.held(session_id, self.at):
            if threading.current_thread().name.startswith(_SIDE_READ):
                # already beside the request's main read: read here rather than wait on the pool
                self._read = Future()
                self._read.set_result(conversation_keys.read(session_id, self.at))
            else:
                self._read = in_background(conversation_keys.read, session_id, self.at)

    def named(self, key_id: str | None) -> bytes | None:
        """The key the session item names (its `key_id`); None for a legacy session (plaintext, no
        key). KeyGone when the session is keyed and its key is gone. A key that is not the one the
        session names is read afresh, once: a cached one (the session was erased and created again
        since it was cached), or none when the read was sent before the session had its key (a legacy
        session given one meanwhile: `make admin ARGS="seal-legacy"`, dal/seal_legacy.py)."""
        if key_id is None:
            return None
        held = self._cached if self._read is None else self._read.result()
        key = conversation_keys.named(self.session_id, key_id, self.at, held)
        if key is None:
            raise KeyGone(self.session_id)
        return key

    def settle(self) -> None:
        """Wait for the read, if one was sent, whatever its answer: a request finishes none of its
        reads after it has answered (a legacy or missing session's key is never asked for)."""
        if self._read is not None:
            wait([self._read])


def _sealed_profile(
    key: bytes | None, session_id: str, title: str | None, metadata: dict[str, str]
) -> dict[str, Any]:
    """A profile's title and metadata as attributes: sealed under the key, or plaintext without one
    (a legacy session)."""
    if key is None:
        return {"title": title, "metadata": dict(metadata)}
    return {
        SEALED_TITLE: seal_text(key, session_id, PROFILE_SK, SEALED_TITLE, title) if title else None,
        SEALED_METADATA: (
            seal_text(key, session_id, PROFILE_SK, SEALED_METADATA, compact_json(metadata))
            if metadata
            else None
        ),
    }


def plain_map(value: Any) -> dict[str, str]:
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
    """Session, profile, the conversation's key (in the keys table), audit entry and the client's
    rate-limit charge: one transaction. The key's TTL is the session's.

    Every attempt counts against the client's limit, whatever its answer: when the id is taken, the
    refused transaction counted nothing, so the attempt is charged alone (one more UpdateItem, on the
    refused path only) before it is answered 409; over the limit, it is answered 429 instead, so a
    client over its limit learns nothing about which ids exist."""
    profile_expires_at = profile_expiry(new.expires_at, new.expires_at - new.created_at)
    key_item, key = conversation_keys.new(new.session_id, new.expires_at, new.retention_hours)
    listed = new.owner_id is not None and not new.temporary  # a temporary one is never listed
    session = SessionItem(
        new.session_id,
        SESSION_SK,
        token_hash=new.token_hash,
        owner_id=new.owner_id,
        owner_key=new.owner_id if listed else None,
        activity_at=iso(new.created_at) if listed else None,
        temporary=True if new.temporary else None,
        retention_hours=new.retention_hours,
        status="active",
        created_at=new.created_at,
        updated_at=new.created_at,
        message_count=0,
        expires_at=new.expires_at,
        uploads_issued=0,
        profile_expires_at=epoch(profile_expires_at),
        key_id=conversation_keys.key_id(key),
        key_expires_at=epoch(new.expires_at),
    )
    profile = ProfileItem(
        new.session_id,
        PROFILE_SK,
        expires_at=profile_expires_at,
        **_sealed_profile(key, new.session_id, new.title, new.metadata),
    )

    tx = Transaction()
    tx.save("session", session, condition=_vacant(new.created_at))
    # a profile (or key) left by an expired session (their TTLs run a little longer) is replaced
    tx.save("profile", profile)
    tx.save("key", key_item)
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
    conversation_keys.remember(new.session_id, key, new.expires_at, new.retention_hours)
    return record_of(session, profile, key)


@storage_errors
def get(session_id: str) -> SessionRecord | None:
    """The session with its profile: one strongly consistent BatchGetItem of both items, its key read
    beside it. None when missing, or keyed and its key gone."""
    key = KeySoon(session_id)
    session: SessionItem | None = None
    profile: ProfileItem | None = None
    try:
        for item in ChatItem.batch_get(
            [(session_id, SESSION_SK), (session_id, PROFILE_SK)], consistent_read=True
        ):
            if isinstance(item, SessionItem):
                session = item
            elif isinstance(item, ProfileItem):
                profile = item
        if session is None:
            return None
        return record_of(session, profile, key.named(session.key_id) or _sealed_since(session, profile))
    except KeyGone:
        return None
    finally:
        key.settle()


def _sealed(profile: ProfileItem | None) -> bool:
    return profile is not None and (profile.sealed_title is not None or profile.sealed_metadata is not None)


def _sealed_since(session: SessionItem, profile: ProfileItem | None) -> bytes | None:
    """The key that opens a legacy session's profile found sealed: its session item was read before it
    had a key and its profile after it was sealed (`make admin ARGS="seal-legacy"` in between; a
    BatchGetItem reads its items one by one, and an index lags): the key stored now, one GetItem.
    None for a session with a key (its own named it) or a plaintext profile."""
    if session.key_id is not None or not _sealed(profile):
        return None
    return conversation_keys.read_afresh(session.pk, clock.now())


@storage_errors
def state(session_id: str) -> SessionRecord | None:
    """The session item alone (who owns it, its state; no profile, no preview, no key): one strongly
    consistent GetItem. A keyed session whose key is gone still has its state (the panic button
    erases it whatever is left)."""
    try:
        return record_of(SessionItem.get(session_id, SESSION_SK, consistent_read=True))
    except DoesNotExist:
        return None


def sealing_key(session_id: str, at: datetime) -> bytes | None:
    """The key a write to the session seals under: held by this process, else one GetItem. None when
    the session has none (legacy, or gone: the write's condition on `key_id` refuses what would be
    wrong)."""
    return conversation_keys.read(session_id, at)


def keyed_as(key: bytes | None) -> Condition:
    """The session item is sealed under this key (or, None, is a legacy session without one)."""
    if key is None:
        return cast(Condition, SessionItem.key_id.does_not_exist())
    return cast(Condition, SessionItem.key_id == conversation_keys.key_id(key))


def retained_for(hours: int | None) -> Condition:
    """The session's own retention is this one (None: it has none, the deployment's applies): a
    write that slides its expiry assumed it."""
    if hours is None:
        return cast(Condition, SessionItem.retention_hours.does_not_exist())
    return cast(Condition, SessionItem.retention_hours == hours)


def move_key_ttl(
    tx: Transaction, session_id: str, expires_at: datetime, retention: tuple[int | None, ...] = ()
) -> list[Any]:
    """Move the key's TTL to the session's new expiry in this transaction (only if the key is still
    there: never a key item without its key), and set the retention it holds when the write changes
    it (`retention`: one value, or none); the session item's actions that record it."""
    actions: list[Any] = [KeyItem.expires_at.set(expires_at)]
    for hours in retention:
        actions.append(
            KeyItem.retention_hours.set(hours) if hours is not None else KeyItem.retention_hours.remove()
        )
    tx.update("key", KeyItem(session_id), actions, condition=KeyItem.pk.exists())
    return [SessionItem.key_expires_at.set(epoch(expires_at))]


_SIDE_READ = "session-read"


@lru_cache(maxsize=1)
def _side_reads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix=_SIDE_READ)


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
    retention: timedelta,
    *,
    entry: AuditEntry | None = None,
) -> SessionRecord | None:
    """Apply a PATCH in one transaction: the session item (conditioned on the caller, its state and
    its key), the profile (its fields, sealed under the session's key, and its TTL, which must outlive
    the session's new expiry), the key's TTL (moved with the session's) and, when ending the session,
    the audit entry. None when the session is not live, not the caller's, ended, or its key is gone
    (the caller reads it to tell which).

    The key is needed before the write: held by this process (the usual case), else read first (one
    GetItem). The answer is the session as this write left it: the session is read concurrently with
    the write and the fields the write set are laid over what was read (fields it did not set are the
    same before and after it), so the PATCH costs one round trip of latency.

    The session's expiry slides by its own retention (`retention_hours`, held with its key; else the
    deployment's `retention`), and the write is conditioned on it. Refused, the session's state is read
    (one GetItem, on the refused path only): written under another key than this one (a legacy session
    given its key in between: `make admin ARGS="seal-legacy"`; the key stored now is read) or for
    another retention, it is tried once more as it is stored now."""
    key = sealing_key(session_id, at)
    hours = conversation_keys.retention_hours(session_id)
    updated = _update(session_id, principal, changes, at, retention, entry=entry, key=key, hours=hours)
    if updated is not None:
        return updated
    now = state(session_id)
    if now is None:
        return None
    if now.key_id != (conversation_keys.key_id(key) if key is not None else None):
        key = conversation_keys.named(session_id, now.key_id, at, None) if now.key_id is not None else None
        if now.key_id is not None and key is None:
            return None  # keyed, and its key is gone
    elif now.retention_hours == hours:
        return None  # refused for what a retry would not change: the caller reads it to tell why
    hours = now.retention_hours
    return _update(session_id, principal, changes, at, retention, entry=entry, key=key, hours=hours)


def _update(
    session_id: str,
    principal: Principal,
    changes: SessionChanges,
    at: datetime,
    retention: timedelta,
    *,
    entry: AuditEntry | None,
    key: bytes | None,
    hours: int | None,
) -> SessionRecord | None:
    """One attempt of `update`, under this key (None: a legacy session's plaintext) and assuming this
    retention of the session's own (None: the deployment's)."""
    before = concurrently(get, session_id)
    retains = "retention_hours" in changes.fields
    new_hours = changes.retention_hours if retains else hours
    kept = retention_of(new_hours, retention)
    expires_at = at + kept
    profile_expires_at = profile_expiry(expires_at, kept)
    actions: list[Any] = [
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(expires_at),
        SessionItem.profile_expires_at.set(epoch(profile_expires_at)),
    ]
    if principal.owner_id is not None:
        actions.append(SessionItem.activity_at.set(iso(at)))
    if changes.end:
        actions.append(SessionItem.status.set("ended"))
    condition = writable(principal, at) & keyed_as(key) & retained_for(hours)
    if retains:
        actions.append(
            SessionItem.retention_hours.set(new_hours)
            if new_hours is not None
            else SessionItem.retention_hours.remove()
        )
        if not changes.temporary_allowed:  # longer than a temporary conversation may be kept
            condition &= SessionItem.temporary.does_not_exist()
    profile_actions = _profile_changes(session_id, changes, key, profile_expires_at)

    tx = Transaction()
    if entry is not None:
        tx.save("audit", audit.item_of(entry))
    if key is not None:  # the key's TTL follows the session's, and holds its retention
        actions += move_key_ttl(tx, session_id, expires_at, (new_hours,) if retains else ())
    tx.update("session", SessionItem(session_id, SESSION_SK), actions, condition=condition)
    tx.update("profile", ProfileItem(session_id, PROFILE_SK), profile_actions)
    read = _commit_beside(tx, before, session_id)
    if read is None:
        return None
    if key is not None:
        conversation_keys.remember(session_id, key, as_stored(expires_at), new_hours)
    written: dict[str, Any] = {
        "updated_at": at,
        "expires_at": as_stored(expires_at),
        "retention_hours": new_hours,
    }
    if changes.end:
        written["status"] = "ended"
    if "title" in changes.fields:
        written["title"] = changes.title or None
    if "metadata" in changes.fields:
        written["metadata"] = dict(changes.metadata or {})
    return read.model_copy(update=written)


def _profile_changes(
    session_id: str, changes: SessionChanges, key: bytes | None, profile_expires_at: datetime
) -> list[Any]:
    """A PATCH's actions on the profile: its TTL, and the fields it sets (sealed under the key)."""
    profile_actions: list[Any] = [ProfileItem.expires_at.set(profile_expires_at)]
    sealed = _sealed_profile(key, session_id, changes.title, dict(changes.metadata or {}))
    for field, plain_attr, sealed_attr, name in (
        ("title", ProfileItem.title, ProfileItem.sealed_title, SEALED_TITLE),
        ("metadata", ProfileItem.metadata, ProfileItem.sealed_metadata, SEALED_METADATA),
    ):
        if field not in changes.fields:
            continue
        value = sealed[field] if key is None else sealed[name]
        attribute = plain_attr if key is None else sealed_attr
        profile_actions.append(attribute.set(value) if value else attribute.remove())  # type: ignore[attr-defined]
        if key is not None:  # a half-sealed profile's plaintext (seal-legacy) must not read again
            profile_actions.append(plain_attr.remove())  # type: ignore[attr-defined]
    return profile_actions


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
        & SessionItem.temporary.does_not_exist()  # a temporary conversation belongs to no account
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
        if refused.failed("session") or refused.failed("key"):
            wait([before])  # nothing of this request outlives it
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
    keys = in_background(conversation_keys.read_many, [h.pk for h in heads if h.key_id is not None], at)
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
    late = [h.pk for h in heads if h.key_id is None and _sealed(profiles.get(h.pk))]
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


# ---- the panic button: mark, erase, remove -------------------------------------------------------


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
        tx.commit()
    except Refused as refused:
        if refused.failed("session"):
            return False
        raise
    finally:
        conversation_keys.forget(session_id)
    return True


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
    try:
        tx.commit()
    except Refused:
        return False
    return True
