"""Message items: appending one (strictly ordered, idempotent, at constant cost) and pages of history
(key layout in keys.py).

Order: each message gets a position (microseconds since the epoch, fixed width) and the append's
transaction conditions on the session's `last_position < position`. DynamoDB serializes writes to the
session item, so positions grow in the order appends are accepted. A writer whose clock is behind, or
that lost a race, learns the current last position from the refused transaction (ALL_OLD) and
retries just above it: one round trip in the common case, no read before the write.

Idempotency: a client `message_id` writes a marker item in the same transaction; a retry finds it,
and the same body is answered with the stored message while another body is a conflict.

Sealed: a keyed session's message (its content and metadata) and preview are sealed under the
session's key (dal/aws/items.py), which the append needs before it writes: held by this process (a
session it served in the last minutes), else one GetItem first. The transaction conditions on the
session being sealed under that very key (`key_id`), so nothing is ever written under a stale one.

Cost: the transaction writes the small session item and the message (and the marker): 4 write units
for a 500-character message (6 with a `message_id`), whatever the session's title and metadata. The
profile holding those is touched only when the session would outlive its TTL (dal/session_items.py), and
the key item only when the session would outlive the key's TTL by more than session_items.key_slack()
(about once an hour of activity: 2 write units more in that append). The process holding the key
knows its TTL and moves it in the first attempt; otherwise the refused attempt says so, and the next
moves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chatvault.core import clock
from chatvault.core.clock import iso, millis
from chatvault.core.errors import StorageUnavailableError
from chatvault.core.seal import SealBroken
from chatvault.dal import conversation_keys, history, sessions
from chatvault.dal.aws import side_reads
from chatvault.dal.aws.items import (
    SEALED_PREVIEW,
    MessageIdItem,
    MessageItem,
    ProfileItem,
    SessionItem,
    compact_json,
    open_message,
    seal_message,
    seal_text,
)
from chatvault.dal.aws.keys import LAST_MESSAGE, MESSAGE_ID_PREFIX, MESSAGE_PREFIX, PROFILE_SK, SESSION_SK
from chatvault.dal.aws.retry import APPEND_ATTEMPTS, is_transient, pause, storage_errors
from chatvault.dal.aws.transaction import Refused, Transaction
from chatvault.dal.conversation_keys import KeyGone, KeySoon, move_key_ttl
from chatvault.dal.session_conditions import keyed_as, retained_for, writable
from chatvault.dal.session_items import as_stored, epoch, key_slack, profile_expiry, record_of
from chatvault.models.domain import (
    Appended,
    MessagePage,
    MessageRecord,
    NewMessage,
    Pace,
    Pacer,
    Principal,
    SessionRecord,
    retention_of,
)

POSITION_DIGITS = 20
PREVIEW_CHARS = 120


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


class Unread(Enum):
    """The session's key, not read yet: the append reads it (`conversation_keys.sealing_key`)."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD
KeyArg = bytes | None | Literal[Unread.UNREAD]
__all__ = ["compact_json"]  # re-exported: the message's metadata JSON (dal/aws/items.py)


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
    pacer: Pacer,
    ceiling: int | None,
    *,
    lock: ReplyLock | None = None,
    key: KeyArg = UNREAD,
) -> Appended:
    """Append the message to the caller's live, active session, or say why not. Each attempt is one
    TransactWriteItems; a refused attempt tells from the items as they were (ALL_OLD) whether the
    message can still be written (at a higher position, with the rate limit's real state, with the
    profile's or the key's TTL refreshed, under the session's current key) and the next attempt does
    that. `ceiling`: the most messages a session may hold (the count is a condition of the same write:
    no extra cost; None: no ceiling). `lock`: take or use the session's reply guard in the same write
    ("busy" when another holds it). `key`: the session's key when the caller has read it already (None:
    it has none), else read here. 429 (RateLimitedError) when the session is over AppendRateLimit; 503
    (StorageUnavailableError) when the attempts run out."""
    floor = ""  # the lowest position the next attempt may take
    known_tat: int | None = None
    refresh_profile = refresh_key = reread_key = False
    key = _known(key, message.session_id, clock.now())
    # the session's own retention, held with its key (None: the deployment's); a refusal tells otherwise
    hours = conversation_keys.retention_hours(message.session_id)
    for attempt in range(APPEND_ATTEMPTS):
        at = clock.now()
        key = _known(key, message.session_id, at)
        position = max(position_of(at), floor)
        step = pacer.step(message.session_id, at, known_tat, first=attempt == 0)
        stored = _record(message, position, at, retention_of(hours, retention))
        # the key this process holds (it knows its TTL) would trail the session's: move it in this one
        refresh_key = refresh_key or (
            attempt == 0
            and conversation_keys.trails(message.session_id, stored.expires_at - key_slack(_kept(stored)))
        )
        tx = _transaction(
            message, principal, stored, step, refresh_profile, ceiling=ceiling, lock=lock, key=key,
            refresh_key=refresh_key, hours=hours,
        )  # fmt: skip
        try:
            tx.send()
        except TransactWriteError as exc:  # not refused: a conflict with another writer, a fault
            if not is_transient(exc):
                raise
            pause(attempt, base=0.005)
            continue
        except Refused as refused:
            session_item = refused.old("session", SessionItem)
            session = record_of(session_item) if session_item is not None else None
            if _gone(refused, session, principal):
                return Appended(outcome="missing")
            if session is not None and session.key_id != _named(key):
                if session.key_id is not None and reread_key:  # keyed, and its key is gone
                    return Appended(outcome="missing")
                key, reread_key = _other_key(message.session_id, session), True
                continue
            decided = _decided(refused, session, message, at, ceiling=ceiling, lock=lock, key=key)
            if decided is not None:
                return decided
            if session is not None:
                hours = session.retention_hours  # its own retention, as stored now
                known_tat = session.append_tat
                refresh_profile = refresh_profile or _profile_stale(session, stored)
                refresh_key = refresh_key or _key_stale(session, stored)
                if session.last_position:
                    floor = max(floor, next_position(session.last_position))
            if refused.failed("message"):  # another append took this very position
                floor = max(floor, next_position(position))
            continue
        pacer.accepted(message.session_id, step)
        if refresh_key:  # the key's TTL moved: so does this process's copy's
            _remember(message.session_id, key, stored.expires_at, hours)
        return Appended(outcome="created", message=stored)
    raise StorageUnavailableError("Too many concurrent writers on this session; retry shortly.")


def _known(key: KeyArg, session_id: str, at: datetime) -> bytes | None:
    return conversation_keys.sealing_key(session_id, at) if key is UNREAD else key


def _remember(session_id: str, key: bytes | None, expires_at: datetime, hours: int | None) -> None:
    if key is not None:
        conversation_keys.remember(session_id, key, expires_at, hours)


def _other_key(session_id: str, session: SessionRecord) -> KeyArg:
    """The key the next attempt writes under when the session is not sealed under this one: none for
    a legacy session (plaintext, as it was written), else the key stored now (one cached before the
    session was erased and made again under the same id is dropped)."""
    if session.key_id is None:
        return None
    conversation_keys.forget(session_id)
    return UNREAD


def _named(key: bytes | None) -> str | None:
    return conversation_keys.key_id(key) if key is not None else None


def _gone(refused: Refused, session: SessionRecord | None, principal: Principal) -> bool:
    """The session refused the attempt for being no live session of the caller's."""
    return bool(refused.failed("session")) and not principal.may_use_live(session, clock.now())


def _kept(stored: MessageRecord) -> timedelta:
    """The retention the attempt writes under (the session's own, or the deployment's)."""
    return stored.expires_at - stored.created_at


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
    at: datetime,
    *,
    ceiling: int | None,
    lock: ReplyLock | None,
    key: bytes | None,
) -> Appended | None:
    """How a refused attempt on the caller's live session, under its key, ends the append, if it
    does (None: the next attempt can succeed)."""
    if refused.failed("key"):  # its key is gone, not its session: a restored copy of an erased one
        return Appended(outcome="missing")
    marker = refused.old("marker", MessageIdItem)
    if marker is not None:
        if marker.body_hash != message.body_hash:
            return Appended(outcome="conflict")
        earlier = get(message.session_id, marker.position, key)
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


def _profile_stale(session: SessionRecord, stored: MessageRecord) -> bool:
    """Would the profile's TTL fall before the session's new expiry? (The next attempt refreshes it.)"""
    return session.profile_expires_at is None or session.profile_expires_at < epoch(stored.expires_at)


def _key_stale(session: SessionRecord, stored: MessageRecord) -> bool:
    """Would the key's TTL trail the session's new expiry by more than the slack? (The next attempt
    moves it.)"""
    slack = int(key_slack(_kept(stored)).total_seconds())
    return session.key_expires_at is not None and session.key_expires_at < epoch(stored.expires_at) - slack


def _preview(key: bytes | None, session_id: str, content: str) -> Any:
    """The session item's preview: sealed, or plaintext in a legacy session."""
    preview = content[:PREVIEW_CHARS]
    if key is None:
        return SessionItem.preview.set(preview)
    return SessionItem.sealed_preview.set(seal_text(key, session_id, SESSION_SK, SEALED_PREVIEW, preview))


def _body(key: bytes | None, session_id: str, sort_key: str, message: NewMessage) -> dict[str, Any]:
    """The message item's content and metadata: sealed, or plaintext in a legacy session."""
    if key is not None:
        return {"sealed": seal_message(key, session_id, sort_key, message.content, message.metadata)}
    return {"content": message.content, "meta": compact_json(message.metadata) if message.metadata else None}


def _transaction(
    message: NewMessage,
    principal: Principal,
    stored: MessageRecord,
    step: Pace | None,
    refresh_profile: bool,
    *,
    ceiling: int | None,
    lock: ReplyLock | None,
    key: bytes | None,
    refresh_key: bool = False,
    hours: int | None = None,
) -> Transaction:
    """One attempt's items: "session" (conditioned on the caller, its state, its key, its last
    position, its pace and its profile's and key's TTLs), "message", and for a client id its "marker";
    "profile" only to refresh its TTL (about once a day of activity), "key" only to move its TTL
    (about once an hour). Never a message without its session, never a count that disagrees with the
    stored messages, never a message sealed under another key than its session's."""
    at, session_expires_at = stored.created_at, stored.expires_at
    sid = message.session_id
    actions: list[Any] = [
        SessionItem.message_count.add(1),
        SessionItem.last_message_at.set(at),
        _preview(key, sid, message.content),
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(session_expires_at),
        SessionItem.last_position.set(stored.position),
    ]
    if principal.owner_id is not None or principal.service:
        # the owner's index sorts by it; the service writer may write to an owned session (on an
        # anonymous one it is not indexed: no owner_key)
        actions.append(SessionItem.activity_at.set(iso(at)))
    condition = (
        writable(principal, at)
        & keyed_as(key)
        & retained_for(hours)
        & (SessionItem.last_position.does_not_exist() | (SessionItem.last_position < stored.position))
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
        profile_expires_at = profile_expiry(session_expires_at, _kept(stored))
        actions.append(SessionItem.profile_expires_at.set(epoch(profile_expires_at)))
        tx.update(
            "profile",
            ProfileItem(message.session_id, PROFILE_SK),
            [ProfileItem.expires_at.set(profile_expires_at)],
        )
    else:  # the profile must outlive the session: if it would not, this attempt is refused
        condition &= SessionItem.profile_expires_at >= epoch(session_expires_at)
    if key is not None and refresh_key:  # the key's TTL follows the session's
        actions += move_key_ttl(tx, sid, session_expires_at)
    elif key is not None:  # the key's TTL must not trail the session's by more than the slack
        slack = int(key_slack(_kept(stored)).total_seconds())
        condition &= SessionItem.key_expires_at >= epoch(session_expires_at) - slack
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
        sid,
        MESSAGE_PREFIX + stored.position,
        message_id=message.message_id,
        role=message.role,
        created_at=at,
        expires_at=stored.expires_at,
        **_body(key, sid, MESSAGE_PREFIX + stored.position, message),
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
def get(session_id: str, position: str, key: bytes | None) -> MessageRecord | None:
    """The message at `position`, opened under the session's key (None: a legacy session); None when
    missing or when it does not open under that key. Found sealed without a key (the session was
    given its key and the message sealed since the caller read it: history.messages_of), it is opened
    under the key stored now."""
    try:
        item = MessageItem.get(session_id, MESSAGE_PREFIX + position, consistent_read=True)
    except DoesNotExist:
        return None
    if key is None and item.sealed is not None:
        key = conversation_keys.read_afresh(session_id, clock.now())
    return _message_of(item, key)


def _message_of(item: MessageItem, key: bytes | None) -> MessageRecord | None:
    if item.sealed is not None:
        if key is None:
            return None
        try:
            content, metadata = open_message(key, item.pk, item.sk, item.sealed)
        except SealBroken:
            return None
    else:
        content, metadata = item.content or "", json.loads(item.meta) if item.meta else {}
    return MessageRecord(
        session_id=item.pk,
        position=item.sk.removeprefix(MESSAGE_PREFIX),
        message_id=item.message_id,
        role=item.role,  # type: ignore[arg-type]  # stored by append: one of the roles
        content=content,
        metadata=metadata,
        created_at=item.created_at,
        expires_at=item.expires_at,
    )


@storage_errors
def page(session_id: str, descending: bool, limit: int, after: str | None) -> MessagePage:
    """A page and the session item that authorizes its reader, in one round trip (dal/history.py
    reads it), the session's key read beside it (none when this process holds it).

    A first ascending page is one Query whose range starts at the session item (`#S` sorts just below
    the messages). Any other page cannot reach it in the same Query, so the session item is read
    (GetItem) concurrently with the Query: two requests, one round trip of latency. A keyed session
    whose key is gone has no head (the reader is answered 404), and its messages are not opened."""
    key = KeySoon(session_id)
    try:
        return _page(session_id, descending, limit, after, key)
    finally:
        key.settle()


def _page(session_id: str, descending: bool, limit: int, after: str | None, key: KeySoon) -> MessagePage:
    first_ascending = after is None and not descending
    session_read = None if first_ascending else side_reads.concurrently(sessions.state, session_id)
    items, more = history.query(
        session_id,
        SESSION_SK if first_ascending else MESSAGE_PREFIX,
        LAST_MESSAGE,
        descending=descending,
        limit=limit + 1 if first_ascending else limit,
        after=after,
    )
    head: SessionRecord | None = None
    raw_messages = [raw for raw in items if history.is_message(raw)]
    if first_ascending and len(raw_messages) < len(items):
        head = record_of(history.session_of(items[0]))
    if session_read is not None:
        head = session_read.result()
    if len(raw_messages) > limit:  # the session item was missing: keep the page size
        raw_messages, more = raw_messages[:limit], True
    records: list[MessageRecord] = []
    if head is not None:
        try:
            records = history.messages_of(raw_messages, key.named(head.key_id))
        except KeyGone:
            head = None
    last = raw_messages[-1]["sk"]["S"].removeprefix(MESSAGE_PREFIX) if raw_messages else None
    return MessagePage.model_construct(head=head, messages=records, last_position=last if more else None)


# Messages a Query for an export. DynamoDB would answer 1,000+ of 500 characters in one 1 MB page in
# ~0.1 s; the emulator takes ~2 ms an item, and a page of 1,000 came close to the 3 s read timeout
# (deadline.py) on a loaded machine. 250 keeps every request far from it, at 40 round trips (about a
# second on AWS) for 10,000 messages, the same read units either way.
EXPORT_PAGE = 250


@storage_errors
def every_page(session_id: str, page_size: int = EXPORT_PAGE) -> Iterator[list[MessageRecord]]:
    """The whole history, oldest first, a page per strongly consistent Query (no scan), for an
    export (after `sessions.get` has read the session and its key: this process holds it): 10,000
    messages are 40 Queries of EXPORT_PAGE."""
    key = conversation_keys.sealing_key(session_id, clock.now())
    after: str | None = None
    while True:
        items, more = history.query(
            session_id, MESSAGE_PREFIX, LAST_MESSAGE, descending=False, limit=page_size, after=after
        )
        raw_messages = [raw for raw in items if history.is_message(raw)]
        records = history.messages_of(raw_messages, key)
        if records:
            yield records
        if not more or not raw_messages:
            return
        after = raw_messages[-1]["sk"]["S"].removeprefix(MESSAGE_PREFIX)
