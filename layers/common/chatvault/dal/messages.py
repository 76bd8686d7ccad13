"""Message items: appending one (strictly ordered, idempotent, at constant cost) and pages of history
(key layout in keys.py).

Order: each message gets a position (microseconds since the epoch, fixed width) and the append's
transaction conditions on the session's `last_position < position`. DynamoDB serializes writes to the
session item, so positions grow in the order appends are accepted. A writer whose clock is behind, or
that lost a race, learns the current last position from the refused transaction (ALL_OLD) and
retries just above it: one round trip in the common case, no read before the write.

Idempotency: a client `message_id` writes a marker item in the same transaction; a retry finds it,
and the same body is answered with the stored message while another body is a conflict.

Cost: the transaction writes the small session item and the message (and the marker): 4 write units
for a 500-character message (6 with a `message_id`), whatever the session's title and metadata. The
profile holding those is touched only when the session would outlive its TTL (dal/sessions.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chatvault import clock
from chatvault.clock import iso, millis
from chatvault.dal import history, pace, sessions
from chatvault.dal.items import MessageIdItem, MessageItem, ProfileItem, SessionItem
from chatvault.dal.keys import MESSAGE_ID_PREFIX, MESSAGE_PREFIX, PROFILE_SK, SESSION_SK
from chatvault.dal.retry import APPEND_ATTEMPTS, is_transient, pause, storage_errors
from chatvault.dal.sessions import as_stored, epoch, profile_expiry, record_of, writable
from chatvault.dal.transaction import Refused, Transaction
from chatvault.errors import StorageUnavailableError
from chatvault.models.domain import (
    Appended,
    MessagePage,
    MessageRecord,
    NewMessage,
    Pace,
    Principal,
    SessionRecord,
)

POSITION_DIGITS = 20
PREVIEW_CHARS = 120
_LAST_MESSAGE = MESSAGE_PREFIX + "~"


@dataclass(frozen=True)
class ReplyLock:
    """One reply at a time per session (the chat, logic/chat.py), kept on the session item: no item of
    its own, no write unit of its own. The user message's append takes it (`holds=False`: the
    transaction also sets `reply_lock`/`reply_until`, on condition that no guard is held or the one
    held has lapsed); the reply's append must hold it (`holds=True`: on condition that `reply_lock`
    is still this token) and frees it in the same write. So two attempts at one reply can never both
    store one, and a guard whose function died lapses at `until_ms`, the end of its invocation."""

    token: str
    until_ms: int  # epoch milliseconds
    holds: bool = False


def compact_json(value: object) -> str:
    """UTF-8 JSON, not ASCII escapes: an astral character costs 4 bytes of the item, not 12."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def position_of(moment: datetime) -> str:
    """A fixed-width order key: microseconds since the epoch, zero-padded so strings sort as numbers."""
    return f"{int(moment.timestamp() * 1_000_000):0{POSITION_DIGITS}d}"


def next_position(position: str) -> str:
    return f"{int(position) + 1:0{POSITION_DIGITS}d}"


def is_position(value: object) -> bool:
    return isinstance(value, str) and len(value) == POSITION_DIGITS and value.isdigit()


@storage_errors
def append(
    message: NewMessage,
    principal: Principal,
    retention: timedelta,
    per_minute: int,
    ceiling: int | None,
    *,
    lock: ReplyLock | None = None,
) -> Appended:
    """Append the message to the caller's live, active session, or say why not. Each attempt is one
    TransactWriteItems; a refused attempt tells from the items as they were (ALL_OLD) whether the
    message can still be written (at a higher position, with the rate limit's real state, with the
    profile's TTL refreshed) and the next attempt does that. `ceiling`: the most messages a session
    may hold (the count is a condition of the same write: no extra cost; None: no ceiling). `lock`:
    take or use the session's reply guard in the same write ("busy" when another holds it). 429
    (RateLimitedError) when the session is over AppendRateLimit; 503 (StorageUnavailableError) when
    the attempts run out."""
    floor = ""  # the lowest position the next attempt may take
    known_tat: int | None = None
    refresh_profile = False
    for attempt in range(APPEND_ATTEMPTS):
        at = clock.now()
        position = max(position_of(at), floor)
        step = pace.step(message.session_id, per_minute, at, known_tat, first=attempt == 0)
        stored = _record(message, position, at, retention)
        try:
            _transaction(message, principal, stored, step, refresh_profile, ceiling=ceiling, lock=lock).send()
        except TransactWriteError as exc:  # not refused: a conflict with another writer, a fault
            if not is_transient(exc):
                raise
            pause(attempt, base=0.005)
            continue
        except Refused as refused:
            session_item = refused.old("session", SessionItem)
            session = record_of(session_item) if session_item is not None else None
            decided = _decided(refused, session, message, principal, at, ceiling=ceiling, lock=lock)
            if decided is not None:
                return decided
            if session is not None:
                known_tat = session.append_tat
                refresh_profile = refresh_profile or _profile_stale(session, at + retention)
                if session.last_position:
                    floor = max(floor, next_position(session.last_position))
            if refused.failed("message"):  # another append took this very position
                floor = max(floor, next_position(position))
            continue
        pace.accepted(message.session_id, step)
        return Appended(outcome="created", message=stored)
    raise StorageUnavailableError("Too many concurrent writers on this session; retry shortly.")


def _record(message: NewMessage, position: str, at: datetime, retention: timedelta) -> MessageRecord:
    """The message as the attempt stores it (`expires_at` in whole seconds, as its TTL keeps it)."""
    return MessageRecord(
        session_id=message.session_id,
        position=position,
        message_id=message.message_id,
        role=message.role,
        content=message.content,
        metadata=message.metadata,
        created_at=at,
        expires_at=as_stored(at + retention),
    )


def _decided(
    refused: Refused,
    session: SessionRecord | None,
    message: NewMessage,
    principal: Principal,
    at: datetime,
    *,
    ceiling: int | None,
    lock: ReplyLock | None,
) -> Appended | None:
    """How a refused attempt ends the append, if it does (None: the next attempt can succeed)."""
    marker = refused.old("marker", MessageIdItem)
    if refused.failed("session") and (
        session is None or not principal.may_use(session) or not session.is_live(clock.now())
    ):
        return Appended(outcome="missing")
    if marker is not None:
        if marker.body_hash != message.body_hash:
            return Appended(outcome="conflict")
        earlier = get(message.session_id, marker.position)
        return Appended(outcome="replayed", message=earlier) if earlier else Appended(outcome="missing")
    if session is None:
        return None
    if session.status == "ended":
        return Appended(outcome="ended")
    full = ceiling is not None and session.message_count >= ceiling
    busy = lock is not None and _guarded_by_another(session, lock, at)
    return Appended(outcome="full") if full else Appended(outcome="busy") if busy else None


def _guarded_by_another(session: SessionRecord, lock: ReplyLock, at: datetime) -> bool:
    """The session's reply guard keeps this attempt out: held by another and not lapsed (taking it), or
    no longer this attempt's (using it)."""
    if lock.holds:
        return session.reply_lock != lock.token
    return session.reply_until is not None and session.reply_until >= millis(at)


def _profile_stale(session: SessionRecord, session_expires_at: datetime) -> bool:
    """Would the profile's TTL fall before the session's new expiry? (The next attempt refreshes it.)"""
    return session.profile_expires_at is None or session.profile_expires_at < epoch(session_expires_at)


def _transaction(
    message: NewMessage,
    principal: Principal,
    stored: MessageRecord,
    step: Pace | None,
    refresh_profile: bool,
    *,
    ceiling: int | None,
    lock: ReplyLock | None,
) -> Transaction:
    """One attempt's items: "session" (conditioned on the caller, its state, its last position, its
    pace and its profile's TTL), "message", and for a client id its "marker"; "profile" only to
    refresh its TTL (about once a day of activity). Never a message without its session, never a
    count that disagrees with the stored messages."""
    at, session_expires_at = stored.created_at, stored.expires_at
    actions: list[Any] = [
        SessionItem.message_count.add(1),
        SessionItem.last_message_at.set(at),
        SessionItem.preview.set(message.content[:PREVIEW_CHARS]),
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(session_expires_at),
        SessionItem.last_position.set(stored.position),
    ]
    if principal.owner_id is not None or principal.service:
        # the owner's index sorts by it; the service writer may write to an owned session (on an
        # anonymous one it is not indexed: no owner_key)
        actions.append(SessionItem.activity_at.set(iso(at)))
    condition = writable(principal, at) & (
        SessionItem.last_position.does_not_exist() | (SessionItem.last_position < stored.position)
    )
    if ceiling is not None:
        condition &= SessionItem.message_count < ceiling
    if lock is not None and lock.holds:  # the reply: only while its guard is this attempt's; frees it
        actions += [
            SessionItem.reply_lock.remove(),
            SessionItem.reply_until.remove(),
            SessionItem.reply_stopped.remove(),
        ]
        condition &= SessionItem.reply_lock == lock.token
    elif lock is not None:  # a chat's user message: takes the guard, if free or lapsed
        actions += [SessionItem.reply_lock.set(lock.token), SessionItem.reply_until.set(lock.until_ms)]
        condition &= SessionItem.reply_until.does_not_exist() | (SessionItem.reply_until < millis(at))
    tx = Transaction()
    if refresh_profile:
        profile_expires_at = profile_expiry(session_expires_at)
        actions.append(SessionItem.profile_expires_at.set(epoch(profile_expires_at)))
        tx.update(
            "profile",
            ProfileItem(message.session_id, PROFILE_SK),
            [ProfileItem.expires_at.set(profile_expires_at)],
        )
    else:  # the profile must outlive the session: if it would not, this attempt is refused
        condition &= SessionItem.profile_expires_at >= epoch(session_expires_at)
    if step is not None:  # the rate limit rides on the same conditional write: no extra round trip
        if step.busy:
            actions.append(SessionItem.append_tat.set(SessionItem.append_tat + step.interval))
            condition &= SessionItem.append_tat.between(step.now, step.ceiling)
        else:
            actions.append(SessionItem.append_tat.set(step.now + step.interval))
            condition &= SessionItem.append_tat.does_not_exist() | (SessionItem.append_tat < step.now)
    tx.update(
        "session",
        SessionItem(message.session_id, SESSION_SK),
        actions,
        condition=condition,
        return_values="ALL_OLD",
    )
    item = MessageItem(
        message.session_id,
        MESSAGE_PREFIX + stored.position,
        message_id=message.message_id,
        role=message.role,
        content=message.content,
        meta=compact_json(message.metadata) if message.metadata else None,
        created_at=at,
        expires_at=stored.expires_at,
    )
    tx.save("message", item, condition=MessageItem.pk.does_not_exist())
    if message.client_id:
        marker = MessageIdItem(
            message.session_id,
            MESSAGE_ID_PREFIX + message.message_id,
            position=stored.position,
            body_hash=message.body_hash,
            expires_at=stored.expires_at,
        )
        tx.save(
            "marker",
            marker,
            condition=MessageIdItem.pk.does_not_exist() | (MessageIdItem.expires_at < at),
            return_values="ALL_OLD",
        )
    return tx


@storage_errors
def get(session_id: str, position: str) -> MessageRecord | None:
    try:
        return _message_of(MessageItem.get(session_id, MESSAGE_PREFIX + position, consistent_read=True))
    except DoesNotExist:
        return None


def _message_of(item: MessageItem) -> MessageRecord:
    return MessageRecord(
        session_id=item.pk,
        position=item.sk.removeprefix(MESSAGE_PREFIX),
        message_id=item.message_id,
        role=item.role,  # type: ignore[arg-type]  # stored by append: one of the roles
        content=item.content,
        metadata=json.loads(item.meta) if item.meta else {},
        created_at=item.created_at,
        expires_at=item.expires_at,
    )


@storage_errors
def page(session_id: str, descending: bool, limit: int, after: str | None) -> MessagePage:
    """A page and the session item that authorizes its reader, in one round trip (dal/history.py
    reads it).

    A first ascending page is one Query whose range starts at the session item (`#S` sorts just below
    the messages). Any other page cannot reach it in the same Query, so the session item is read
    (GetItem) concurrently with the Query: two requests, one round trip of latency."""
    first_ascending = after is None and not descending
    session_read = None if first_ascending else sessions.concurrently(sessions.state, session_id)
    items, more = history.query(
        session_id,
        SESSION_SK if first_ascending else MESSAGE_PREFIX,
        _LAST_MESSAGE,
        descending=descending,
        limit=limit + 1 if first_ascending else limit,
        after=after,
    )
    head: SessionRecord | None = None
    records: list[MessageRecord] = []
    for raw in items:
        if history.is_message(raw):
            records.append(history.message_of(raw))
        else:
            head = record_of(history.session_of(raw))
    if session_read is not None:
        head = session_read.result()
    if len(records) > limit:  # the session item was missing: keep the page size
        records, more = records[:limit], True
    last = records[-1].position if records else None
    return MessagePage.model_construct(head=head, messages=records, last_position=last if more else None)


# Messages a Query for an export. DynamoDB would answer 1,000+ of 500 characters in one 1 MB page in
# ~0.1 s; the emulator takes ~2 ms an item, and a page of 1,000 came close to the 3 s read timeout
# (deadline.py) on a loaded machine. 250 keeps every request far from it, at 40 round trips (about a
# second on AWS) for 10,000 messages, the same read units either way.
EXPORT_PAGE = 250


@storage_errors
def every_page(session_id: str, page_size: int = EXPORT_PAGE) -> Iterator[list[MessageRecord]]:
    """The whole history, oldest first, a page per strongly consistent Query (no scan), for an
    export: 10,000 messages are 40 Queries of EXPORT_PAGE."""
    after: str | None = None
    while True:
        items, more = history.query(
            session_id, MESSAGE_PREFIX, _LAST_MESSAGE, descending=False, limit=page_size, after=after
        )
        records = [history.message_of(raw) for raw in items if history.is_message(raw)]
        if records:
            yield records
        if not more or not records:
            return
        after = records[-1].position
