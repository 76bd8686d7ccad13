"""The session data access against in-process moto: keys, conditions and the erase steps."""

from __future__ import annotations

import uuid
from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.errors import RateLimitedError, SessionNotFoundError
from chatvault.dal import conversation_keys, erasure, session_items, session_lists, sessions
from chatvault.dal.aws.keys import PROFILE_SK, SESSION_SK
from chatvault.logic.delete_session import delete_session
from chatvault.logic.rules.access import Caller, hash_token
from chatvault.models.domain import (
    AuditEntry,
    NewSession,
    Principal,
    RateCharge,
    SessionChanges,
    SessionRecord,
)
from tests.helpers import deletion_entry, store

pytestmark = pytest.mark.usefixtures("aws")
TABLE = "chatvault-local-SessionsTable"


def _new(session_id: str | None = None, token: str = "t", hours: int = 1) -> NewSession:
    at = clock.now()
    return NewSession(
        session_id=session_id or str(uuid.uuid4()),
        token_hash=hash_token(token),
        owner_id=None,
        title="t",
        metadata={"k": "v"},
        created_at=at,
        expires_at=at + timedelta(hours=hours),
    )


def _items(session_id: str) -> list[dict]:
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    return [i for i in items if i["pk"]["S"] == session_id]


def _plant(session_id: str, count: int) -> None:
    ddb = boto3.client("dynamodb")
    for i in range(count):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": session_id}, "sk": {"S": f"M#{i:020d}"}})


def test_create_writes_the_session_and_its_profile_in_one_partition() -> None:
    new = _new()
    record = store(new)
    assert record.session_id == new.session_id
    assert record.metadata == {"k": "v"}
    keys = sorted(i["sk"]["S"] for i in _items(new.session_id))
    assert keys == [PROFILE_SK, SESSION_SK]
    assert sessions.get(new.session_id) == record


def test_create_refuses_a_live_id_and_reuses_an_expired_one() -> None:
    new = _new(hours=1)
    store(new)
    assert store(_new(new.session_id)) is None  # taken: the caller's 409
    expired = new.model_copy(update={"expires_at": clock.now() - timedelta(seconds=1)})
    other = _new()
    store(expired.model_copy(update={"session_id": other.session_id}))
    assert store(_new(other.session_id)).title == "t"


def test_a_create_refused_for_a_taken_id_is_charged_all_the_same() -> None:
    """Otherwise `session_id` is a free oracle: 409 while the id lives, 201 once it is gone. Over the
    limit, a taken id is answered 429 like a free one, so it tells nothing either."""
    new = _new()
    charge = RateCharge(action="create_session", client="prober", at=new.created_at, per_minute=3)

    def attempt(session: NewSession) -> SessionRecord | None:
        entry = AuditEntry(session_id=session.session_id, event="session_created", at=session.created_at)
        return sessions.create(session, charge, entry)

    attempt(new)
    for _ in range(2):
        assert attempt(_new(new.session_id)) is None  # taken: the caller's 409
    (counter,) = boto3.client("dynamodb").scan(TableName="chatvault-local-LimitsTable")["Items"]
    assert counter["n"] == {"N": "3"}
    with pytest.raises(RateLimitedError):
        attempt(_new(new.session_id))
    with pytest.raises(RateLimitedError):
        attempt(_new())


def test_update_is_refused_for_strangers_ended_and_expired_sessions() -> None:
    new = _new(token="owner")
    store(new)
    at = clock.now()
    later = timedelta(hours=1)  # the deployment's retention
    changes = SessionChanges(fields=frozenset({"title"}), title="x")
    assert (
        sessions.update(new.session_id, Principal(token_hash=hash_token("other")), changes, at, later) is None
    )
    owner = Principal(token_hash=hash_token("owner"))
    ended = sessions.update(
        new.session_id, owner, SessionChanges(fields=frozenset({"status"}), end=True), at, later
    )
    assert ended is not None
    assert ended.status == "ended"
    assert sessions.update(new.session_id, owner, changes, at, later) is None
    assert sessions.get(new.session_id).title == "t"  # type: ignore[union-attr]


def test_erase_steps_remove_every_item() -> None:
    new = _new()
    store(new)
    _plant(new.session_id, 120)
    owner = Principal(token_hash=hash_token("t"))
    at = clock.now()

    assert erasure.mark_erasing(new.session_id, owner, at, at + timedelta(hours=1))
    assert sessions.get(new.session_id) is None  # its key is gone: nothing of it can be read
    marked = sessions.state(new.session_id)
    assert marked is not None
    assert not marked.is_live(at)
    assert erasure.erase_items(new.session_id, workers=4) == (120, (marked.deleted_at, 0))
    erasure.remove(new.session_id, deletion_entry(new.session_id))

    assert _items(new.session_id) == []


def test_mark_refuses_a_stranger() -> None:
    new = _new()
    store(new)
    at = clock.now()
    assert not erasure.mark_erasing(new.session_id, Principal(token_hash="x"), at, at)
    conversation_keys.forget()
    assert sessions.get(new.session_id).deleted_at is None  # type: ignore[union-attr]  # its key kept


def test_a_delete_that_died_half_way_is_finished_by_a_retry() -> None:
    new = _new(token="tok")
    store(new)
    _plant(new.session_id, 40)
    at = clock.now()
    owner = Principal(token_hash=hash_token("tok"))
    # the first attempt marked the session and then the Lambda died
    assert erasure.mark_erasing(new.session_id, owner, at, at + timedelta(hours=1))

    receipt = delete_session(new.session_id, Caller(token="tok"))

    assert receipt.deleted_at == clock.iso(at)
    assert _items(new.session_id) == []
    with pytest.raises(SessionNotFoundError):
        delete_session(new.session_id, Caller(token="tok"))


def test_a_ten_thousand_message_history_is_erased_in_one_call() -> None:
    new = _new(token="tok")
    store(new)
    ddb = boto3.client("dynamodb")
    keys = [f"M#{i:020d}" for i in range(10_000)] + [f"!I#{uuid.uuid4()}" for _ in range(10_000)]
    for start in range(0, len(keys), 25):
        ddb.batch_write_item(
            RequestItems={
                TABLE: [
                    {
                        "PutRequest": {
                            "Item": {"pk": {"S": new.session_id}, "sk": {"S": sk}, "c": {"S": "x" * 100}}
                        }
                    }
                    for sk in keys[start : start + 25]
                ]
            }
        )

    delete_session(new.session_id, Caller(token="tok"))

    assert _items(new.session_id) == []


def test_owner_list_refuses_start_keys_outside_the_owner() -> None:
    from chatvault.core.errors import InvalidCursorError

    with pytest.raises(InvalidCursorError):
        session_lists.list_by_owner(
            "alice",
            clock.now(),
            10,
            {"pk": {"S": "x"}, "sk": {"S": "#S"}, "owner_key": {"S": "bob"}, "activity_at": {"S": "1"}},
        )
    with pytest.raises(InvalidCursorError):
        session_lists.list_by_owner("alice", clock.now(), 10, {"pk": {"S": "x"}})


def _raw(session_id: str, sort_key: str) -> dict:
    return boto3.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": session_id}, "sk": {"S": sort_key}}, ConsistentRead=True
    )["Item"]


def _key_item(session_id: str) -> dict | None:
    return (
        boto3.client("dynamodb")
        .get_item(TableName="chatvault-local-KeysTable", Key={"pk": {"S": session_id}}, ConsistentRead=True)
        .get("Item")
    )


def test_create_writes_the_key_with_the_session_and_seals_the_title_and_metadata() -> None:
    new = _new().model_copy(update={"title": "a secret title", "metadata": {"topic": "a secret topic"}})
    record = store(new)
    session, profile, key = (
        _raw(new.session_id, SESSION_SK),
        _raw(new.session_id, PROFILE_SK),
        _key_item(new.session_id),
    )
    assert key is not None
    # the key's TTL is the session's, and the session item says so and names the key
    assert key["expires_at"] == session["expires_at"] == session["key_expires_at"]
    assert session["key_id"]["S"] == conversation_keys.key_id(
        conversation_keys.read(new.session_id, clock.now())
    )
    assert set(profile) >= {"sealed_title", "sealed_metadata"}
    assert not {"title", "metadata"} & set(profile)
    assert b"secret" not in repr([session, profile]).encode()
    assert (record.title, record.metadata) == ("a secret title", {"topic": "a secret topic"})
    conversation_keys.forget()  # a new process: the key is read beside the session
    assert sessions.get(new.session_id) == record


def test_a_refused_create_leaves_the_first_sessions_key_in_place() -> None:
    new = _new()
    record = store(new)
    assert store(new) is None
    assert sessions.get(new.session_id) == record  # the refused create's key was neither written nor kept


def test_the_mark_destroys_the_key_in_the_same_write_and_a_strangers_mark_does_not() -> None:
    new = _new()
    store(new)
    at = clock.now()
    assert not erasure.mark_erasing(new.session_id, Principal(token_hash="x"), at, at)
    assert _key_item(new.session_id) is not None
    assert erasure.mark_erasing(new.session_id, Principal(token_hash=hash_token("t")), at, at)
    assert _key_item(new.session_id) is None
    assert conversation_keys.cached(new.session_id, at) is None  # nor kept in this process


def test_a_cached_key_of_an_erased_session_made_again_under_its_id_is_not_used() -> None:
    """A warm process holds the first session's key; the session is erased elsewhere and created
    again under the same id: the old key is told apart by its name and read afresh."""
    new = _new()
    store(new)
    at = clock.now()
    stale = conversation_keys.read(new.session_id, at)
    assert stale is not None
    assert erasure.mark_erasing(new.session_id, None, at, at)
    erasure.erase_items(new.session_id, workers=2)
    erasure.remove(new.session_id, deletion_entry(new.session_id))
    again = new.model_copy(update={"title": "second"})
    store(again)
    conversation_keys.remember(new.session_id, stale, again.expires_at, None)  # as another process holds it
    got = sessions.get(new.session_id)
    assert got is not None
    assert got.title == "second"
    assert conversation_keys.cached(new.session_id, at) != stale


def test_the_session_reads_as_gone_once_its_key_has_expired() -> None:
    """Expiry shreds: past its key's TTL (not yet removed by DynamoDB) a session has no readable key,
    and its `expires_at` says when that happens."""
    new = _new(hours=1)
    record = store(new)
    assert record.expires_at == session_items.as_stored(new.expires_at)
    later = new.expires_at + timedelta(seconds=1)
    assert conversation_keys.read(new.session_id, later) is None
    conversation_keys.forget()
    assert conversation_keys.read(new.session_id, later) is None
    got = sessions.get(new.session_id)
    assert got is not None  # now it is still readable; then it is not live
    assert not got.is_live(later)
