"""The restore check (logic/check_restore.py, `make admin ARGS="restore-check"`): in a restored table,
every conversation whose key is gone is removed whole; those with their key, and those written before
conversations had keys, are kept."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from chatvault import clock, seal
from chatvault.dal import conversation_keys
from chatvault.logic.check_restore import check_restore
from chatvault.settings import get_settings
from tests.helpers import call

pytestmark = pytest.mark.usefixtures("aws")


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
    return str(created["session_id"])


def _items(session_id: str) -> list[dict]:
    ddb = boto3.client("dynamodb")
    return ddb.query(
        TableName=get_settings().table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": session_id}},
    )["Items"]


def _keyed(session_id: str, *, with_key: bool, expired: bool = False) -> None:
    """Mark the session as written under a key (as the service does), with its key kept or not."""
    now = clock.now()
    expiry = now - timedelta(minutes=1) if expired else now + timedelta(hours=1)
    ddb = boto3.client("dynamodb")
    ddb.update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": session_id}, "sk": {"S": "#S"}},
        UpdateExpression="SET key_expires_at = :e",
        ExpressionAttributeValues={":e": {"N": str(int(expiry.timestamp()))}},
    )
    if with_key:
        item, _ = conversation_keys.new(session_id, expiry)
        item.save()


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
    kept, erased, expired, legacy = _session(), _session(), _session(), _session()
    _keyed(kept, with_key=True)
    _keyed(erased, with_key=False)
    _keyed(expired, with_key=True, expired=True)
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
