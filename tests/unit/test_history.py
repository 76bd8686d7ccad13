"""History pages decode message items without PynamoDB's models (dal/history.py): the decoding must
agree with PynamoDB's own, attribute by attribute, for every shape a message is stored in: sealed
under its session's key (dal/aws/items.py), or plaintext (a session written before keys existed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chatvault.core import seal
from chatvault.dal import history, messages
from chatvault.dal.aws.items import ChatItem, MessageItem, compact_json, seal_message
from chatvault.dal.aws.keys import MESSAGE_PREFIX
from chatvault.dal.messages import position_of

pytestmark = pytest.mark.usefixtures("aws")

SHAPES = [
    ("hello", None),
    ("astral 𝄞 and é", {"token_count": 3, "model": "m", "tags": ["a", "b"], "nested": {"x": 1.5}}),
    ("x" * 65536, {"empty": {}}),
    ("line one\nline two\n", {"error_message": "a \n newline\x01"}),  # the separator is no boundary
]


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "legacy plaintext"])
@pytest.mark.parametrize(("content", "metadata"), SHAPES)
def test_the_raw_decoding_matches_pynamodb(content: str, metadata: dict | None, sealed: bool) -> None:
    sid = str(uuid.uuid4())
    at = datetime(2026, 11, 22, 10, 4, 5, 123000, tzinfo=UTC)
    sk = MESSAGE_PREFIX + position_of(at)
    key = seal.new_key() if sealed else None
    body = (
        {"sealed": seal_message(key, sid, sk, content, metadata or {})}
        if key is not None
        else {"content": content, "meta": compact_json(metadata) if metadata else None}
    )
    MessageItem(
        sid,
        sk,
        message_id=str(uuid.uuid4()),
        role="assistant",
        created_at=at,
        expires_at=datetime(2026, 12, 22, 10, 4, 5, tzinfo=UTC),
        **body,
    ).save()

    (raw,), more = history.query(
        sid, MESSAGE_PREFIX, MESSAGE_PREFIX + "~", descending=False, limit=5, after=None
    )
    decoded = history.message_of(raw, key)
    (item,) = list(ChatItem.query(sid))
    assert isinstance(item, MessageItem)
    assert decoded is not None
    by_model = messages.get(sid, decoded.position, key)  # PynamoDB's own, opened as the append's replay

    assert not more
    assert history.is_message(raw)
    assert decoded.session_id == item.pk
    assert MESSAGE_PREFIX + decoded.position == item.sk
    assert decoded.message_id == item.message_id
    assert decoded.role == item.role
    assert decoded.content == content
    assert decoded.metadata == (metadata or {})
    assert decoded.created_at == item.created_at == at
    assert decoded.expires_at == item.expires_at
    assert by_model == decoded
    # and every attribute PynamoDB stores is one the decoding reads (or the key and kind)
    assert set(raw) <= {"pk", "sk", "kind", "message_id", "role", "created_at", "expires_at"} | (
        {"sealed"} if sealed else {"content", "meta"}
    )
    if sealed:
        assert content.encode() not in raw["sealed"]["B"] or content == ""
        assert (item.content, item.meta) == (None, None)  # no plaintext beside the sealed value


def test_a_sealed_message_does_not_open_under_another_key_or_in_another_place() -> None:
    sid = str(uuid.uuid4())
    at = datetime(2026, 11, 22, 10, 4, 5, tzinfo=UTC)
    key = seal.new_key()
    sealed = seal_message(key, sid, MESSAGE_PREFIX + position_of(at), "words", {})
    raw = {
        "pk": {"S": sid},
        "sk": {"S": MESSAGE_PREFIX + position_of(at)},
        "kind": {"S": "message"},
        "message_id": {"S": str(uuid.uuid4())},
        "role": {"S": "user"},
        "sealed": {"B": sealed},
        "created_at": {"S": "2026-11-22T10:04:05.000000+0000"},
        "expires_at": {"N": "1800000000"},
    }
    assert history.message_of(raw, key) is not None
    assert history.message_of(raw, seal.new_key()) is None  # an erased conversation's copy
    assert history.message_of(raw, None) is None  # no key at all
    moved = {**raw, "sk": {"S": MESSAGE_PREFIX + position_of(at.replace(second=6))}}
    assert history.message_of(moved, key) is None  # copied to another item
    assert history.messages_of([raw, moved], key) == [history.message_of(raw, key)]
