"""Everything validation accepts is storable: the largest message at the largest allowed setting
(MaxMessageChars=65536), in the characters that cost the most bytes, with every metadata field at
its limit, fits a DynamoDB item (400 KB) and is read back exactly. So does the largest session.

Costs per character: content is stored sealed (dal/aws/items.py) as its UTF-8 bytes (an astral character
is 4 bytes), never JSON-escaped; message metadata as UTF-8 JSON, where a control character is the most
expensive (`\\u0001`, 6 bytes), sealed with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatvault.core import bounds
from tests.benchmarks.capacity import item_bytes as plain_bytes
from tests.helpers import call, create, partition

pytestmark = pytest.mark.usefixtures("aws")
TABLE = "chatvault-local-SessionsTable"
ITEM_LIMIT = 400 * 1024
MAX_SETTING = 65_536
ASTRAL = "\U0001f600"
CONTROL = "\x01"


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's own item size (tests/benchmarks/capacity.py), binary values (sealed) included."""
    binary = {k: v for k, v in item.items() if "B" in v}
    plain = plain_bytes({k: v for k, v in item.items() if k not in binary})
    return plain + sum(len(k.encode()) + len(v["B"]) for k, v in binary.items())


def _distinct(i: int, length: int, filler: str) -> str:
    """Keys and tool names must differ: one astral character tells them apart."""
    return chr(0x1F300 + i) + filler * (length - 1)


def heaviest_session() -> dict[str, Any]:
    """A create body with the title and metadata at their limits, in four-byte characters."""
    return {
        "title": ASTRAL * bounds.TITLE_CHARS,
        "metadata": {
            _distinct(i, bounds.METADATA_KEY_CHARS, ASTRAL): ASTRAL * bounds.METADATA_VALUE_CHARS
            for i in range(bounds.METADATA_PAIRS)
        },
    }


def worst_metadata() -> dict[str, Any]:
    return {
        "tools_used": [_distinct(i, bounds.TOOL_NAME_CHARS, CONTROL) for i in range(bounds.TOOL_NAMES)],
        "processing_time_ms": 86_400_000,
        "token_count": 10_000_000,
        "model": CONTROL * bounds.MODEL_CHARS,
        "has_error": True,
        "error_message": CONTROL * bounds.ERROR_MESSAGE_CHARS,
        "attributes": {
            _distinct(i, bounds.METADATA_KEY_CHARS, CONTROL): CONTROL * bounds.METADATA_VALUE_CHARS
            for i in range(bounds.METADATA_PAIRS)
        },
    }


def test_the_largest_message_at_the_largest_setting_is_stored_and_read_back(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("MAX_MESSAGE_CHARS", str(MAX_SETTING))
    settings_env.setenv("CLIENT_ROLES", "user,assistant,system,tool")  # its widest setting too
    session = create(body=heaviest_session()).body
    sid, token = session["session_id"], session["session_token"]
    body = {
        "role": "assistant",
        "content": ASTRAL * MAX_SETTING,
        "message_id": "0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11",
        "metadata": worst_metadata(),
    }
    raw = json.dumps(body)  # ASCII escapes: the largest spelling a client may send
    from chatvault.core.settings import get_settings

    assert len(raw.encode()) <= get_settings().max_body_bytes
    reply = call("POST", f"/api/v1/sessions/{sid}/messages", token=token, raw_body=raw)
    assert reply.status == 201, str(reply.body)[:300]

    page = call("GET", f"/api/v1/sessions/{sid}/messages", token=token)
    (stored,) = page.body["items"]
    assert stored["content"] == body["content"]
    assert stored["metadata"] == body["metadata"]

    items = partition(sid, TABLE)
    sizes = {item["sk"]["S"][:2]: item_bytes(item) for item in items}  # DynamoDB's own item size
    assert max(sizes.values()) < ITEM_LIMIT, sizes
    # the message item is the large one, and it still leaves room: no field could push it over
    assert sizes["M#"] < ITEM_LIMIT - 8 * 1024, sizes


def test_one_character_more_is_refused_before_any_write(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("MAX_MESSAGE_CHARS", str(MAX_SETTING))
    session = create().body
    reply = call(
        "POST",
        f"/api/v1/sessions/{session['session_id']}/messages",
        token=session["session_token"],
        body={"role": "user", "content": ASTRAL * (MAX_SETTING + 1)},
    )
    assert reply.status == 413
    assert reply.body["error"]["code"] == "message_too_large"
    got = call("GET", f"/api/v1/sessions/{session['session_id']}", token=session["session_token"])
    assert got.body["message_count"] == 0
