"""The restore check (logic/check_restore.py, `make admin ARGS="restore-check"`): in a restored table,
every conversation whose key is gone is removed whole; those with their key, and those written before
conversations had keys, are kept."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock, seal
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys
from chatvault.logic.check_restore import check_restore
from tests.helpers import call, partition, unseal_in_place

pytestmark = pytest.mark.usefixtures("aws")
_tokens: dict[str, str] = {}


def _session(messages: int = 2) -> str:
    created = call("POST", "/api/v1/sessions", body={"title": "t"}).body
    for n in range(messages):
        reply = call(
            "POST",
            f"/api/v1/sessions/{created['session_id']}/messages",
            body={"role": "user", "content": f"m{n}"},
            token=created["session_token"],
        )
        assert reply.status == 201
    _tokens[created["session_id"]] = created["session_token"]
    return str(created["session_id"])


def _items(session_id: str) -> list[dict]:
    return partition(session_id)


def _lose_key(session_id: str, *, expired: bool = False) -> None:
    """The session's key deleted (as an erase does), or past its TTL but not yet removed."""
    if expired:
        past = clock.now() - timedelta(minutes=1)
        conversation_keys.KeyItem(session_id).update(actions=[conversation_keys.KeyItem.expires_at.set(past)])
    else:
        conversation_keys.KeyItem(session_id).delete()
    conversation_keys.forget()


def _legacy() -> str:
    """A session written before conversations had keys: plaintext items, no key."""
    session_id = _session()
    unseal_in_place(session_id)
    return session_id


def _sealed_orphan() -> str:
    """A partition holding only a sealed message (its session item gone in a half-finished erase)."""
    session_id = "5d0f3f0a-1111-4c1e-9a7a-2b9a0b0c0d0e"
    boto3.client("dynamodb").put_item(
        TableName=get_settings().table_name,
        Item={
            "pk": {"S": session_id},
            "sk": {"S": "M#00000000000000000001"},
            "sealed": {"B": seal.seal(seal.new_key(), b"x", b"words")},
        },
    )
    return session_id


def test_conversations_without_their_key_are_removed_whole_and_the_rest_kept() -> None:
    kept, erased, expired, legacy = _session(), _session(), _session(), _legacy()
    _lose_key(erased)
    _lose_key(expired, expired=True)
    assert call("GET", f"/api/v1/sessions/{legacy}", token=_tokens[legacy]).body["title"] == "t"
    orphan = _sealed_orphan()
    counts = {s: len(_items(s)) for s in (kept, erased, expired, legacy)}

    dry = check_restore(dry_run=True)
    assert (dry.removed_sessions, dry.kept, dry.legacy) == (3, 1, 1)
    assert all(len(_items(s)) == n for s, n in counts.items())  # a dry run removes nothing

    report = check_restore()
    assert (report.sessions, report.kept, report.legacy, report.removed_sessions) == (5, 1, 1, 3)
    assert report.removed_items == counts[erased] + counts[expired] + 1
    assert _items(erased) == _items(expired) == _items(orphan) == []
    assert len(_items(kept)) == counts[kept]
    assert len(_items(legacy)) == counts[legacy]
    again = check_restore()  # safe to run twice
    assert (again.removed_sessions, again.removed_items, again.kept) == (0, 0, 1)
