"""Share links (issue 24, part 3): a read-only snapshot of a conversation, revocable.

A link is one item in its session's partition, `!H#<share_id>`, holding no content: the position of
the newest message when it was made (`upto`), how many messages the session held, when it was made
and when it expires. Decision: the snapshot refers to the history, it does not copy it. Messages are
never edited in place and later ones sort after `upto`, so "the messages up to `upto`" is exactly
the conversation as it was shared; and what the conversation loses (the panic button, erase-all,
an operator's erase, expiry, a shorter retention) the link loses too, at once, with nothing more
to erase: a copy would be one more thing to find and delete.

The public read finds the link by its id in the sparse keys-only `by_share` index (eventually
consistent), then reads the link, the session and its profile in one strongly consistent
BatchGetItem with the session's key beside it: a revoked link (its item deleted) or an erased,
expired or keyless session is refused at once, whatever the index still shows. Its messages are one
Query of the history's range up to `upto`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatvault.dal import history
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import ChatItem, ProfileItem, SessionItem, ShareItem, ShareKey
from chatvault.dal.aws.keys import MESSAGE_PREFIX, PROFILE_SK, SESSION_SK, SHARE_PREFIX
from chatvault.dal.aws.retry import storage_errors, written
from chatvault.dal.aws.transaction import Transaction
from chatvault.dal.conversation_keys import KeyGone, KeySoon
from chatvault.dal.session_conditions import owns
from chatvault.dal.session_items import epoch, record_of
from chatvault.models.domain import MessageRecord, Principal, SessionRecord, ShareRecord

ATTEMPTS = 3  # a link made again when an append moved the newest message in between


def _record(item: ShareItem) -> ShareRecord:
    return ShareRecord(
        session_id=item.pk,
        share_id=item.share_id,
        created_at=item.created_at,
        expires_at=item.expires_at,
        limit_at=datetime.fromtimestamp(int(item.limit_at), tz=UTC),
        upto=item.upto,
        message_count=int(item.message_count),
    )


@storage_errors
def create(share: ShareRecord, principal: Principal, at: datetime) -> bool:
    """Write the link, in one transaction with its count on the session item, on condition that the
    session is the caller's, live, and still has `upto` as its newest message (and so
    `message_count` messages): the snapshot is exactly what the caller read. False when refused (the
    caller reads the session again, to tell why or to try again)."""
    session = SessionItem(share.session_id, SESSION_SK)
    newest = (
        SessionItem.last_position == share.upto if share.upto else SessionItem.last_position.does_not_exist()
    )
    tx = Transaction()
    tx.save(
        "share",
        ShareItem(
            share.session_id,
            SHARE_PREFIX + share.share_id,
            share_id=share.share_id,
            created_at=share.created_at,
            expires_at=share.expires_at,
            limit_at=epoch(share.limit_at),
            upto=share.upto,
            message_count=share.message_count,
        ),
        condition=ShareItem.pk.does_not_exist(),
    )
    tx.update(
        "session",
        session,
        [SessionItem.shares_issued.add(1)],
        condition=(
            owns(principal)
            & SessionItem.deleted_at.does_not_exist()
            & (SessionItem.expires_at > at)
            & (SessionItem.message_count == share.message_count)
            & newest
        ),
    )
    return tx.committed("session")


@storage_errors
def page(session_id: str, limit: int, after: str | None) -> tuple[list[ShareRecord], str | None]:
    """A page of the session's links, oldest first (one strongly consistent Query of `!H#`), and the
    share id the next page starts after."""
    connection.of(ChatItem)
    start = {"pk": {"S": session_id}, "sk": {"S": SHARE_PREFIX + after}} if after else None
    results = ShareItem.query(
        session_id,
        ShareItem.sk.startswith(SHARE_PREFIX),
        consistent_read=True,
        limit=limit,
        page_size=limit,
        last_evaluated_key=start,
    )
    records = [_record(item) for item in results]
    last = results.last_evaluated_key
    return records, (last["sk"]["S"].removeprefix(SHARE_PREFIX) if last else None)


@storage_errors
def revoke(session_id: str, share_id: str) -> bool:
    """Delete the link (the public read refuses it from then on). False when there was none."""
    link = ShareItem(session_id, SHARE_PREFIX + share_id)
    return written(lambda: link.delete(condition=ShareItem.pk.exists()))


@storage_errors
def session_of(share_id: str) -> str | None:
    """Which session the link belongs to, by the `by_share` index (eventually consistent: the caller
    reads the link itself before it trusts it)."""
    connection.of(ShareKey)
    for found in ShareKey.by_share.query(share_id, limit=1):
        return found.pk
    return None


@storage_errors
def opened(session_id: str, share_id: str) -> tuple[ShareRecord, SessionRecord, bytes | None] | None:
    """The link, its session (with its title) and the session's key, in one strongly consistent
    BatchGetItem with the key read beside it. None when the link or the session is gone, or the
    session is keyed and its key is gone (the caller checks expiry and state)."""
    key = KeySoon(session_id)
    items: dict[str, Any] = {}
    try:
        for item in ChatItem.batch_get(
            [(session_id, SHARE_PREFIX + share_id), (session_id, SESSION_SK), (session_id, PROFILE_SK)],
            consistent_read=True,
        ):
            items[item.sk] = item
        share, session = items.get(SHARE_PREFIX + share_id), items.get(SESSION_SK)
        if not isinstance(share, ShareItem) or not isinstance(session, SessionItem):
            return None
        profile = items.get(PROFILE_SK)
        opened_key = key.named(session.key_id)
        record = record_of(session, profile if isinstance(profile, ProfileItem) else None, opened_key)
        return _record(share), record, opened_key
    except KeyGone:
        return None
    finally:
        key.settle()


@storage_errors
def messages(
    session_id: str, upto: str, key: bytes | None, limit: int, after: str | None
) -> tuple[list[MessageRecord], str | None]:
    """A page of the snapshot: the messages from the start (or after `after`) up to `upto`, oldest
    first, one strongly consistent Query; and the position the next page starts after."""
    items, more = history.query(
        session_id, MESSAGE_PREFIX, MESSAGE_PREFIX + upto, descending=False, limit=limit, after=after
    )
    raw_messages = [raw for raw in items if history.is_message(raw)]
    last = raw_messages[-1]["sk"]["S"].removeprefix(MESSAGE_PREFIX) if raw_messages and more else None
    return history.messages_of(raw_messages, key), last if last != upto else None
