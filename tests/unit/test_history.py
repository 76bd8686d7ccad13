"""History pages decode message items without PynamoDB's models (dal/history.py): the decoding must
agree with PynamoDB's own, attribute by attribute, for every shape a message is stored in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chatvault.dal import history
from chatvault.dal.items import ChatItem, MessageItem
from chatvault.dal.keys import MESSAGE_PREFIX
from chatvault.dal.messages import compact_json, position_of

pytestmark = pytest.mark.usefixtures("aws")


@pytest.mark.parametrize(
    ("content", "metadata"),
    [
        ("hello", None),
        ("astral 𝄞 and é", {"token_count": 3, "model": "m", "tags": ["a", "b"], "nested": {"x": 1.5}}),
        ("x" * 65536, {"empty": {}}),
    ],
)
def test_the_raw_decoding_matches_pynamodb(content: str, metadata: dict | None) -> None:
    sid = str(uuid.uuid4())
    at = datetime(2026, 11, 22, 10, 4, 5, 123000, tzinfo=UTC)
    MessageItem(
        sid,
        MESSAGE_PREFIX + position_of(at),
        message_id=str(uuid.uuid4()),
        role="assistant",
        content=content,
        meta=compact_json(metadata) if metadata else None,
        created_at=at,
        expires_at=datetime(2026, 12, 22, 10, 4, 5, tzinfo=UTC),
    ).save()

    (raw,), more = history.query(
        sid, MESSAGE_PREFIX, MESSAGE_PREFIX + "~", descending=False, limit=5, after=None
    )
    decoded = history.message_of(raw)
    (item,) = list(ChatItem.query(sid))
    assert isinstance(item, MessageItem)

    assert not more
    assert history.is_message(raw)
    assert decoded.session_id == item.pk
    assert MESSAGE_PREFIX + decoded.position == item.sk
    assert decoded.message_id == item.message_id
    assert decoded.role == item.role
    assert decoded.content == item.content == content
    assert decoded.metadata == (metadata or {})
    assert decoded.created_at == item.created_at == at
    assert decoded.expires_at == item.expires_at
    # and every attribute PynamoDB stores is one the decoding reads (or the key and kind)
    assert set(raw) <= {
        "pk",
        "sk",
        "kind",
        "message_id",
        "role",
        "content",
        "meta",
        "created_at",
        "expires_at",
    }
