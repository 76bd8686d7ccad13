"""Message items: the append transaction and pages of history (key layout in keys.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chatvault.clock import iso
from chatvault.dal import sessions
from chatvault.dal.clients import client
from chatvault.dal.items import ChatItem, MessageIdItem, MessageItem, ProfileItem, SessionItem
from chatvault.dal.keys import MESSAGE_ID_PREFIX, MESSAGE_PREFIX, PROFILE_SK, SESSION_SK
from chatvault.dal.retry import any_condition_failure, condition_failure, is_transient, storage_errors
from chatvault.dal.sessions import epoch, profile_expiry, record_of, writable
from chatvault.models.domain import (
    AppendOutcome,
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
    position: str,
    session_expires_at: datetime,
    pace: Pace | None = None,
    *,
    refresh_profile: bool = False,
) -> AppendOutcome:
    """One TransactWriteItems: the session item (conditioned on the caller, its state, its last
    position and its pace), the message and, for a client id, its marker. Never a message without its
    session, never a count that disagrees with the stored messages. The title and metadata are not
    rewritten: their profile is touched only when its TTL would fall before the session's new expiry
    (`refresh_profile`, after a refusal that said so; about once a day of activity)."""
    at = message.created_at
    session = SessionItem(message.session_id, SESSION_SK)
    actions: list[Any] = [
        SessionItem.message_count.add(1),
        SessionItem.last_message_at.set(at),
        SessionItem.preview.set(message.content[:PREVIEW_CHARS]),
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(session_expires_at),
        SessionItem.last_position.set(position),
    ]
    if principal.owner_id is not None:
        actions.append(SessionItem.activity_at.set(iso(at)))
    condition = writable(principal, at) & (
        SessionItem.last_position.does_not_exist() | (SessionItem.last_position < position)
    )
    if refresh_profile:
        profile_expires_at = profile_expiry(session_expires_at)
        actions.append(SessionItem.profile_expires_at.set(epoch(profile_expires_at)))
    else:  # the profile must outlive the session: if it would not, this attempt is refused
        condition &= SessionItem.profile_expires_at >= epoch(session_expires_at)
    if pace is not None:  # the rate limit rides on the same conditional write: no extra round trip
        if pace.busy:
            actions.append(SessionItem.append_tat.set(SessionItem.append_tat + pace.interval))
            condition &= SessionItem.append_tat.between(pace.now, pace.ceiling)
        else:
            actions.append(SessionItem.append_tat.set(pace.now + pace.interval))
            condition &= SessionItem.append_tat.does_not_exist() | (SessionItem.append_tat < pace.now)
    item = MessageItem(
        message.session_id,
        MESSAGE_PREFIX + position,
        message_id=message.message_id,
        role=message.role,
        content=message.content,
        meta=compact_json(message.metadata) if message.metadata else None,
        created_at=at,
        expires_at=message.expires_at,
    )
    try:
        with TransactWrite(connection=SessionItem._get_connection().connection) as tx:
            tx.update(session, actions=actions, condition=condition, return_values="ALL_OLD")
            if refresh_profile:
                tx.update(
                    ProfileItem(message.session_id, PROFILE_SK),
                    actions=[ProfileItem.expires_at.set(profile_expires_at)],
                )
            tx.save(item, condition=MessageItem.pk.does_not_exist())
            if message.client_id:
                marker = MessageIdItem(
                    message.session_id,
                    MESSAGE_ID_PREFIX + message.message_id,
                    position=position,
                    body_hash=message.body_hash,
                    expires_at=message.expires_at,
                )
                tx.save(
                    marker,
                    condition=MessageIdItem.pk.does_not_exist() | (MessageIdItem.expires_at < at),
                    return_values="ALL_OLD",
                )
    except TransactWriteError as exc:
        if not any_condition_failure(exc):
            if is_transient(exc):
                return AppendOutcome(committed=False, transient=True)
            raise
        return _refusal(exc, message.client_id, session_expires_at)
    return AppendOutcome(committed=True)


def _refusal(exc: TransactWriteError, has_marker: bool, session_expires_at: datetime) -> AppendOutcome:
    """Read the cancellation reasons; the append sends [message, (marker), session, (profile)]:
    PynamoDB sends puts before updates, each in call order. The refused session item also says
    whether its profile would expire before the session's new expiry (the next attempt refreshes it)."""
    message_reason = condition_failure(exc, 0)
    marker_reason = condition_failure(exc, 1 if has_marker else None)
    session_reason = condition_failure(exc, 2 if has_marker else 1)
    session = None
    if session_reason is not None and session_reason.raw_item:
        session = record_of(SessionItem.from_raw_data(session_reason.raw_item))
    duplicate_position = duplicate_hash = None
    if marker_reason is not None and marker_reason.raw_item:
        marker = MessageIdItem.from_raw_data(marker_reason.raw_item)
        duplicate_position, duplicate_hash = marker.position, marker.body_hash
    return AppendOutcome(
        committed=False,
        session_refused=session_reason is not None,
        session=session,
        duplicate_position=duplicate_position,
        duplicate_hash=duplicate_hash,
        position_taken=message_reason is not None,
        profile_stale=session is not None
        and (session.profile_expires_at is None or session.profile_expires_at < epoch(session_expires_at)),
    )


@storage_errors
def get(session_id: str, position: str) -> MessageRecord | None:
    response = client("dynamodb").get_item(
        TableName=ChatItem.Meta.table_name,
        Key={"pk": {"S": session_id}, "sk": {"S": MESSAGE_PREFIX + position}},
        ConsistentRead=True,
    )
    return _message_of_raw(response["Item"]) if "Item" in response else None


_DATETIME = UTCDateTimeAttribute()


def _message_of_raw(raw: dict[str, Any]) -> MessageRecord:
    """A stored message straight from DynamoDB JSON (the layout MessageItem writes). History pages are
    the hot read path: PynamoDB's generic deserializer costs several times the rest of the request for
    a page of 50."""
    return MessageRecord.model_construct(
        session_id=raw["pk"]["S"],
        position=raw["sk"]["S"].removeprefix(MESSAGE_PREFIX),
        message_id=raw["message_id"]["S"],
        role=raw["role"]["S"],
        content=raw["content"]["S"],
        metadata=json.loads(raw["meta"]["S"]) if "meta" in raw else {},
        created_at=_DATETIME.deserialize(raw["created_at"]["S"]),  # type: ignore[no-untyped-call]
        expires_at=datetime.fromtimestamp(int(raw["expires_at"]["N"]), tz=UTC),
    )


@storage_errors
def page(session_id: str, descending: bool, limit: int, after: str | None) -> MessagePage:
    """A page and the session item that authorizes its reader, in one round trip.

    A first ascending page is one Query whose range starts at the session item (`#S` sorts just below
    the messages). Any other page cannot reach it in the same Query, so the session item is read
    (GetItem) concurrently with the Query: two requests, one round trip of latency."""
    first_ascending = after is None and not descending
    session_read = None if first_ascending else sessions.concurrently(sessions.state, session_id)
    request: dict[str, Any] = {
        "TableName": ChatItem.Meta.table_name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":pk": {"S": session_id},
            ":low": {"S": SESSION_SK if first_ascending else MESSAGE_PREFIX},
            ":high": {"S": _LAST_MESSAGE},
        },
        "ScanIndexForward": not descending,
        "Limit": limit + 1 if first_ascending else limit,
        "ConsistentRead": True,
    }
    if after is not None:
        request["ExclusiveStartKey"] = {"pk": {"S": session_id}, "sk": {"S": MESSAGE_PREFIX + after}}
    response = client("dynamodb").query(**request)
    head: SessionRecord | None = None
    records: list[MessageRecord] = []
    for raw in response.get("Items", []):
        if raw["sk"]["S"].startswith(MESSAGE_PREFIX):
            records.append(_message_of_raw(raw))
        elif raw["sk"]["S"] == SESSION_SK:
            head = record_of(SessionItem.from_raw_data(raw))
    if session_read is not None:
        head = session_read.result()
    more = "LastEvaluatedKey" in response
    if len(records) > limit:  # the session item was missing: keep the page size
        records, more = records[:limit], True
    last = records[-1].position if records else None
    return MessagePage.model_construct(head=head, messages=records, last_position=last if more else None)
