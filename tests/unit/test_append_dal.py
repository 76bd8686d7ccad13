"""The append's outcomes at the data layer (dal/messages.py): each of created, replayed, conflict,
ended, full and missing, decided from the refused transaction alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chatvault.core import clock, seal
from chatvault.dal import conversation_keys, erasure, messages, session_items, sessions
from chatvault.dal.aws.items import SessionItem
from chatvault.dal.aws.transaction import Transaction
from chatvault.logic.rules.access import hash_token
from chatvault.logic.rules.pace import AppendLimit
from chatvault.models.domain import Appended, NewMessage, Principal, SessionChanges
from tests.benchmarks.capacity import item_bytes
from tests.helpers import stored_session

pytestmark = pytest.mark.usefixtures("aws")
RETENTION = timedelta(hours=1)
OWNER = Principal(token_hash=hash_token("t"))


def _session(hours: float = 1) -> str:
    return stored_session(hours)


def _message(session_id: str, content: str = "hi", message_id: str | None = None) -> NewMessage:
    return NewMessage(
        session_id=session_id,
        message_id=message_id or str(uuid.uuid4()),
        client_id=message_id is not None,
        role="user",
        content=content,
        metadata={},
        body_hash=f"hash of {content}",
    )


def _append(
    message: NewMessage, principal: Principal = OWNER, per_minute: int = 0, ceiling: int = 10_000
) -> Appended:
    return messages.append(message, principal, RETENTION, AppendLimit(per_minute), ceiling)


def test_created_returns_the_stored_message_in_order() -> None:
    sid = _session()
    first, second = _append(_message(sid, "one")), _append(_message(sid, "two"))
    assert first.outcome == second.outcome == "created"
    assert first.message is not None
    assert second.message is not None
    assert first.message.position < second.message.position
    page = messages.page(sid, descending=False, limit=10, after=None)
    assert [m.content for m in page.messages] == ["one", "two"]
    assert page.messages[0] == first.message


def test_replayed_returns_the_first_stored_message() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    created = _append(_message(sid, "same", mid))
    replayed = _append(_message(sid, "same", mid))
    assert (created.outcome, replayed.outcome) == ("created", "replayed")
    assert replayed.message == created.message
    assert len(messages.page(sid, descending=False, limit=10, after=None).messages) == 1


def test_conflict_when_the_id_was_used_with_another_body() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    _append(_message(sid, "one", mid))
    assert _append(_message(sid, "other", mid)) == Appended(outcome="conflict")


def test_ended_when_the_session_was_ended() -> None:
    sid = _session()
    at = clock.now()
    sessions.update(sid, OWNER, SessionChanges(fields=frozenset({"status"}), end=True), at, RETENTION)
    assert _append(_message(sid)) == Appended(outcome="ended")


def test_full_when_the_session_holds_the_most_messages_allowed_and_nothing_is_stored() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    assert _append(_message(sid, "one", mid), ceiling=2).outcome == "created"
    assert _append(_message(sid, "two"), ceiling=2).outcome == "created"
    assert _append(_message(sid, "three"), ceiling=2) == Appended(outcome="full")
    assert [m.content for m in messages.page(sid, descending=False, limit=10, after=None).messages] == [
        "one",
        "two",
    ]
    state = sessions.state(sid)
    assert state is not None
    assert state.message_count == 2
    # a retry of a message the session already holds is still answered with it
    assert _append(_message(sid, "one", mid), ceiling=2).outcome == "replayed"


@pytest.mark.parametrize("case", ["absent", "another token", "expired", "being erased"])
def test_missing_for_anything_the_caller_may_not_write(case: str) -> None:
    sid = _session(hours=-1 if case == "expired" else 1)
    principal = OWNER
    if case == "absent":
        sid = str(uuid.uuid4())
    elif case == "another token":
        principal = Principal(token_hash=hash_token("someone else"))
    elif case == "being erased":
        at = clock.now()
        assert erasure.mark_erasing(sid, OWNER, at, at + RETENTION)
    assert _append(_message(sid), principal) == Appended(outcome="missing")
    if case != "absent":
        assert messages.page(sid, descending=False, limit=10, after=None).messages == []


# ---- sealed under the session's key; the key's TTL follows the session's ---------------------------


def _raw(session_id: str, sort_key: str, table: str = "chatvault-local-SessionsTable") -> dict:
    key = {"pk": {"S": session_id}} if sort_key == "" else {"pk": {"S": session_id}, "sk": {"S": sort_key}}
    return boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]


def _key_ttl(session_id: str) -> int:
    return int(_raw(session_id, "", "chatvault-local-KeysTable")["expires_at"]["N"])


def _bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it (tests/benchmarks/capacity.py), binary values included."""
    plain = {k: v for k, v in item.items() if "B" not in v}
    return item_bytes(plain) + sum(len(k.encode()) + len(v["B"]) for k, v in item.items() if "B" in v)


def test_an_append_seals_the_message_and_preview_and_keeps_its_items_under_a_write_unit() -> None:
    """The bench's bar, 4 write units for a 500-character append (6 with a message_id), holds when
    both items stay under 1 KB: with the worst preview (120 four-byte characters, sealed), the rate
    limit's state and a chat's reply guard, an anonymous session's item is still under it (the seal
    adds 29 bytes to the preview, the key's name and TTL 43 more). (An owned session's 36-character
    subject, indexed twice, or a Stop on top of it, would cross 1 KB with such a preview, as it did
    before sealing: +2 write units on those appends only.)"""
    sid = _session()
    SessionItem(sid, "#S").update(
        actions=[
            SessionItem.reply_lock.set("r" * 32),
            SessionItem.reply_until.set(10**13),
            SessionItem.append_tat.set(10**16),
        ]
    )
    owner = OWNER
    plain = _append(_message(sid, "x" * 500, str(uuid.uuid4())), owner)
    assert plain.message is not None
    message = _raw(sid, "M#" + plain.message.position)
    assert set(message) >= {"sealed"}
    assert not {"content", "meta"} & set(message)
    assert b"x" * 50 not in message["sealed"]["B"]
    assert _bytes(message) <= 1024
    astral = _append(_message(sid, "\U0001f600" * 500), owner)
    assert astral.outcome == "created"
    session = _raw(sid, "#S")
    assert "preview" not in session
    assert len(session["sealed_preview"]["B"]) == 120 * 4 + seal.OVERHEAD
    assert _bytes(session) <= 1024, _bytes(session)


def _transactions(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records the item names of every transaction sent from now on (the list is appended to)."""
    writes: list[list[str]] = []
    real_send = Transaction.send

    def send(tx: Transaction) -> None:
        writes.append(tx.names)
        real_send(tx)

    monkeypatch.setattr(Transaction, "send", send)
    return writes


def test_the_keys_ttl_follows_the_sessions_without_a_write_on_every_append(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """An append slides the session's expiry; its key's TTL follows only when the session would
    outlive it by more than the slack (min(1 hour, retention / 24)): then that append moves it to the
    session's new expiry in the same transaction. So the key's TTL is never after the session's, and
    never more than the slack before it."""
    settings_env.setenv("RETENTION_HOURS", "1")  # a slack of 150 seconds
    slack = int(session_items.key_slack(timedelta(hours=1)).total_seconds())
    assert slack == 150
    sid = _session(hours=1)
    created = _key_ttl(sid)
    start = clock.now()
    writes = _transactions(settings_env)
    for seconds, moved in ((60, False), (140, False), (200, True), (260, False)):
        settings_env.setattr(clock, "now", lambda s=seconds: start + timedelta(seconds=s))
        writes.clear()
        assert _append(_message(sid)).outcome == "created"
        session = _raw(sid, "#S")
        expires, key_ttl = int(session["expires_at"]["N"]), _key_ttl(sid)
        assert key_ttl == int(session["key_expires_at"]["N"])
        assert expires - slack <= key_ttl <= expires, seconds
        assert ("key" in writes[-1]) is moved, (seconds, writes)
        assert len(writes) == 1  # this process holds the key and its TTL: moved in the first attempt
        if moved:
            assert key_ttl == expires > created
    # a process whose copy of the key's TTL is not the stored one (a session given its key by
    # seal-legacy): the refused attempt says the key trails, and the next one moves it
    settings_env.setattr(conversation_keys, "trails", lambda session_id, moment: False)
    settings_env.setattr(clock, "now", lambda: start + timedelta(seconds=420))
    writes.clear()
    assert _append(_message(sid)).outcome == "created"
    assert writes == [["message", "session"], ["message", "key", "session"]]
    assert _key_ttl(sid) == int(_raw(sid, "#S")["expires_at"]["N"])
    conversation_keys.forget()
    record = sessions.get(sid)
    assert record is not None
    assert record.expires_at == datetime.fromtimestamp(_key_ttl(sid), tz=UTC)  # when it becomes unreadable


def test_an_append_to_a_session_whose_key_is_gone_stores_nothing() -> None:
    """A copy restored from a backup: the session item is back, its key is not (erased)."""
    sid = _session()
    conversation_keys.KeyItem(sid).delete()
    conversation_keys.forget()
    assert _append(_message(sid)) == Appended(outcome="missing")
    assert sessions.state(sid).message_count == 0  # type: ignore[union-attr]


def test_a_legacy_session_stays_plaintext_and_readable() -> None:
    """A session written before conversations had keys: no key_id, plaintext items; new messages are
    written as its old ones (the operator's migration seals them later)."""
    sid = _session()
    SessionItem(sid, "#S").update(actions=[SessionItem.key_id.remove(), SessionItem.key_expires_at.remove()])
    conversation_keys.KeyItem(sid).delete()
    conversation_keys.forget()
    appended = _append(_message(sid, "plain words"))
    assert appended.outcome == "created"
    assert appended.message is not None
    raw = _raw(sid, "M#" + appended.message.position)
    assert raw["content"]["S"] == "plain words"
    assert "sealed" not in raw
    assert _raw(sid, "#S")["preview"]["S"] == "plain words"
    page = messages.page(sid, descending=False, limit=10, after=None)
    assert page.head is not None
    assert [m.content for m in page.messages] == ["plain words"]
    assert sessions.get(sid).preview == "plain words"  # type: ignore[union-attr]


def test_an_append_slides_a_session_by_its_own_retention_learned_with_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session with a retention of its own (a temporary one, an hour, in a deployment keeping two):
    the append learns it with the key (one write, no refused attempt), and a process holding a stale
    copy is told by the refusal (the next attempt writes it right). Never the deployment's."""
    from chatvault.models.domain import NewSession
    from tests.helpers import store

    deployment = timedelta(hours=2)
    at = clock.now()
    sid = str(uuid.uuid4())
    store(
        NewSession(
            session_id=sid, token_hash=hash_token("t"), owner_id=None, title=None, metadata={},
            created_at=at, expires_at=at + timedelta(hours=1), temporary=True, retention_hours=1,
        )
    )  # fmt: skip
    writes = _transactions(monkeypatch)
    for stale in (False, True):
        writes.clear()
        if stale:  # a copy of the key held without the session's retention
            key = conversation_keys.cached(sid, clock.now())
            assert key is not None
            conversation_keys.remember(sid, key, at + timedelta(hours=1), None)
        else:
            conversation_keys.forget()  # read with the key: one write
        appended = messages.append(_message(sid), OWNER, deployment, AppendLimit(0), 10_000)
        assert appended.outcome == "created"
        assert appended.message is not None
        assert len(writes) == (2 if stale else 1), writes  # stale: refused, then written as stored
        created = appended.message.created_at
        assert appended.message.expires_at == session_items.as_stored(created + timedelta(hours=1))
        assert int(_raw(sid, "#S")["expires_at"]["N"]) == session_items.epoch(created + timedelta(hours=1))
