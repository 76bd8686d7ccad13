"""The chat's reads and its reply guard outside the two appends (dal/messages.py writes both messages
and takes and frees the guard in them): the history the model sees, finding a stored reply, and the
guard's own writes on the rarer paths (a retry takes it alone; a failed model call frees it early).

The history is read concurrently with the user message's append (`context_soon`): one round trip of
latency for both. It is read before the append has authorized the caller, and is used only if the
append succeeds: a refused caller's read is dropped unseen. The session's key is read once, before
both (none when this process holds it: the chat's own append cached it), and opens the history."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import datetime
from typing import Literal

from pynamodb.expressions.update import Action

from chatvault.core import clock
from chatvault.core.clock import millis
from chatvault.dal import conversation_keys, history, sessions
from chatvault.dal.aws import side_reads
from chatvault.dal.aws.items import SessionItem
from chatvault.dal.aws.keys import LAST_MESSAGE, MESSAGE_PREFIX, SESSION_SK
from chatvault.dal.aws.retry import storage_errors, written
from chatvault.dal.messages import ReplyLock
from chatvault.dal.session_conditions import owns, writable
from chatvault.models.domain import MessageRecord, Principal

# Messages a Query while looking for a reply after its user message: the reply follows it at once
# unless other messages were appended while it was being made.
FIND_PAGE = 25


@storage_errors
def context(session_id: str, limit: int, key: bytes | None, before: str | None = None) -> list[MessageRecord]:
    """The session's newest `limit` messages (below position `before`, when given), oldest first,
    opened under the session's key (None: a legacy session): one strongly consistent Query, newest
    first."""
    high = MESSAGE_PREFIX + before if before is not None else LAST_MESSAGE
    items, _ = history.query(session_id, MESSAGE_PREFIX, high, descending=True, limit=limit, after=None)
    records = history.messages_of(items, key)
    return [r for r in reversed(records) if before is None or r.position < before]


def context_soon(session_id: str, limit: int, key: bytes | None) -> Future[list[MessageRecord]]:
    """`context`, sent now, beside the append."""
    return side_reads.in_background(context, session_id, limit, key)


@storage_errors
def find(session_id: str, after: str, message_id: str, key: bytes | None) -> MessageRecord | None:
    """The message with this id stored after position `after` (a reply after its user message), by
    Queries from there, opened under the session's key; None when there is none."""
    start: str | None = after
    while True:
        items, more = history.query(
            session_id, MESSAGE_PREFIX, LAST_MESSAGE, descending=False, limit=FIND_PAGE, after=start
        )
        raw_messages = [raw for raw in items if history.is_message(raw)]
        # a reply: a client's own message cannot pose as one
        for record in history.messages_of(raw_messages, key):
            if record.message_id == message_id and record.role == "assistant":
                return record
        if not more or not raw_messages:
            return None
        start = raw_messages[-1]["sk"]["S"].removeprefix(MESSAGE_PREFIX)


def sealing_key(session_id: str) -> bytes | None:
    """The key the chat's messages are sealed under and its history opens with: held by this process,
    else one GetItem (before the append and the history's Query, which both need it)."""
    return conversation_keys.sealing_key(session_id, clock.now())


@storage_errors
def take(
    session_id: str, principal: Principal, lock: ReplyLock, at: datetime
) -> Literal["taken", "busy", "ended", "gone"]:
    """Take the session's reply guard alone (a retry whose user message is already stored): one
    conditional UpdateItem. Refused, one read tells why: "busy" (another holds it), "ended", or "gone"
    (not the caller's live session)."""
    session = SessionItem(session_id, SESSION_SK)
    vacant = SessionItem.reply_until.does_not_exist() | (SessionItem.reply_until < millis(at))
    guard: list[Action] = [SessionItem.reply_lock.set(lock.token), SessionItem.reply_until.set(lock.until_ms)]
    if not written(lambda: session.update(actions=guard, condition=writable(principal, at) & vacant)):
        current = sessions.state(session_id)
        if not principal.may_use_live(current, at):
            return "gone"
        if current.status == "ended":
            return "ended"
        return "busy" if current.replying(at) else "gone"
    return "taken"


@storage_errors
def give_back(session_id: str, lock: ReplyLock) -> None:
    """Free the guard early (the model failed: a retry need not wait for it to lapse), if it is still
    this attempt's."""
    session = SessionItem(session_id, SESSION_SK)
    freed: list[Action] = [
        SessionItem.reply_lock.remove(),
        SessionItem.reply_until.remove(),
        SessionItem.reply_stopped.remove(),
    ]
    written(lambda: session.update(actions=freed, condition=SessionItem.reply_lock == lock.token))


@storage_errors
def stop_asked(session_id: str, lock: ReplyLock) -> bool:
    """Whether the reply holding this guard should stop: the person pressed Stop, or the session is
    gone (erased: its reply could not be stored anyway). One strongly consistent GetItem."""
    current = sessions.state(session_id)
    return current is None or current.deleted_at is not None or current.reply_stopped == lock.token


@storage_errors
def stop(session_id: str, principal: Principal, at: datetime) -> Literal["stopping", "none", "gone"]:
    """Ask the reply being made in the caller's session to stop: "stopping" when one was (it stops
    within STOP_CHECK_S and stores what it wrote), "none" when none is being made, "gone" when the
    session is not the caller's live one (read to tell, on the refused path only). One conditional
    UpdateItem."""
    session = SessionItem(session_id, SESSION_SK)
    making = (
        owns(principal)
        & SessionItem.deleted_at.does_not_exist()
        & (SessionItem.expires_at > at)
        & SessionItem.reply_lock.exists()
        & (SessionItem.reply_until >= millis(at))
    )
    if written(
        lambda: session.update(
            actions=[SessionItem.reply_stopped.set(SessionItem.reply_lock)], condition=making
        )
    ):
        return "stopping"
    current = sessions.state(session_id)
    if not principal.may_use_live(current, at):
        return "gone"
    return "none"
