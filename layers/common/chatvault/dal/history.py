"""Pages of history, the hot read path: the one place that reads DynamoDB's JSON without PynamoDB's
models.

PynamoDB's model deserialization costs about 45 µs an item here, 2.2 ms of CPU for a page of 50:
more than the rest of the request, and over the warm-request budget (docs/DESIGN.md, "Performance"). So a
page is read with PynamoDB's public low-level API (`Connection.query`, with PynamoDB's conditions, on
the sessions table's shared connection) and its message items are decoded directly, from the
attributes MessageItem writes, in a fifth of the time. tests/unit/test_history.py checks the decoding
against PynamoDB's own for every attribute, so the two cannot drift apart.

A keyed session's messages are sealed (dal/aws/items.py): each is opened here under the session's key,
which the caller has read beside the page. A message that does not open (sealed under another key:
a copy of an erased conversation restored under an id used again) is unreadable, and left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import UTCDateTimeAttribute

from chatvault.core import clock
from chatvault.core.seal import SealBroken
from chatvault.dal import conversation_keys
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import (
    SEALED_FEEDBACK,
    SEALED_MESSAGE,
    ChatItem,
    SessionItem,
    open_message,
    open_text,
)
from chatvault.dal.aws.keys import MESSAGE_PREFIX
from chatvault.models.domain import Feedback, MessageRecord

_DATETIME = UTCDateTimeAttribute()


def query(
    session_id: str, low: str, high: str, *, descending: bool, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """One strongly consistent Query of the session's sort keys in [low, high] (after `after`), at
    most `limit` items: the raw items, and whether DynamoDB has more."""
    response = connection.of(ChatItem).query(
        ChatItem.Meta.table_name,
        session_id,
        range_key_condition=ChatItem.sk.between(low, high),
        consistent_read=True,
        exclusive_start_key=(
            {"pk": {"S": session_id}, "sk": {"S": MESSAGE_PREFIX + after}} if after is not None else None
        ),
        limit=limit,
        scan_index_forward=not descending,
    )
    return response.get("Items", []), "LastEvaluatedKey" in response


def is_message(raw: dict[str, Any]) -> bool:
    return bool(raw["sk"]["S"].startswith(MESSAGE_PREFIX))


def session_of(raw: dict[str, Any]) -> SessionItem:
    return SessionItem.from_raw_data(raw)


def message_of(raw: dict[str, Any], key: bytes | None) -> MessageRecord | None:
    """A message item as MessageItem stores it, straight from DynamoDB JSON: sealed under `key`, or
    plaintext (a legacy session's). None when it is sealed and does not open under `key`."""
    session_id, sort_key = raw["pk"]["S"], raw["sk"]["S"]
    if SEALED_MESSAGE in raw:
        if key is None:
            return None
        try:
            content, metadata = open_message(key, session_id, sort_key, raw[SEALED_MESSAGE]["B"])
        except SealBroken:
            return None
    else:
        content, metadata = plaintext_of(raw)
    return MessageRecord.model_construct(
        feedback=feedback_of(raw, key),
        session_id=session_id,
        position=sort_key.removeprefix(MESSAGE_PREFIX),
        message_id=raw["message_id"]["S"],
        role=raw["role"]["S"],
        content=content,
        metadata=metadata,
        created_at=_DATETIME.deserialize(raw["created_at"]["S"]),  # type: ignore[no-untyped-call]
        expires_at=datetime.fromtimestamp(int(raw["expires_at"]["N"]), tz=UTC),
    )


def feedback_of(raw: dict[str, Any], key: bytes | None) -> Feedback | None:
    """A message's feedback (dal/feedback.py): sealed under the key, or a legacy message's plaintext.
    None when it has none (or, sealed, it does not open under this key)."""
    if SEALED_FEEDBACK in raw:
        if key is None:
            return None
        try:
            text = open_text(key, raw["pk"]["S"], raw["sk"]["S"], SEALED_FEEDBACK, raw[SEALED_FEEDBACK]["B"])
        except SealBroken:
            return None
    elif "feedback" in raw:
        text = raw["feedback"]["S"]
    else:
        return None
    return Feedback.model_validate_json(text)


def plaintext_of(raw: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A legacy message's content and metadata, from its plaintext attributes."""
    content = raw["content"]["S"] if "content" in raw else ""
    return content, json.loads(raw["meta"]["S"]) if "meta" in raw else {}


def messages_of(items: list[dict[str, Any]], key: bytes | None) -> list[MessageRecord]:
    """The readable messages among raw items, in their order. Sealed ones among them when the caller
    has no key (it read the session as legacy, before `make admin ARGS="seal-legacy"` gave it its key
    and sealed these: dal/seal_legacy.py) are opened under the key stored now (one GetItem)."""
    if key is None and any(SEALED_MESSAGE in raw for raw in items if is_message(raw)):
        key = conversation_keys.read_afresh(items[0]["pk"]["S"], clock.now())
    records = (message_of(raw, key) for raw in items if is_message(raw))
    return [record for record in records if record is not None]
