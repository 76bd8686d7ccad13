"""Each conversation's own key (dal/conversation_keys.py) and the seal around what a person wrote
(seal.py): a value opens only under its key, in its place; a key past its TTL or deleted is gone."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock, seal
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys, secret


def test_a_sealed_value_opens_only_under_its_key_and_in_its_place() -> None:
    key, other = seal.new_key(), seal.new_key()
    here = seal.place("s1", "M#0001", "body")
    sealed = seal.seal_json(key, here, ["the words", {"model": "m"}])
    assert seal.unseal_json(key, here, sealed) == ["the words", {"model": "m"}]
    assert b"the words" not in sealed
    for key_, where in (
        (other, here),  # another conversation's key
        (key, seal.place("s2", "M#0001", "body")),  # copied to another session
        (key, seal.place("s1", "M#0002", "body")),  # copied to another item
        (key, seal.place("s1", "M#0001", "title")),  # copied to another field
    ):
        with pytest.raises(seal.SealBroken):
            seal.unseal(key_, where, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(seal.SealBroken):
        seal.unseal(key, here, tampered)
    assert len(sealed) == len(b'["the words",{"model":"m"}]') + seal.OVERHEAD
    assert seal.seal(key, here, b"x") != seal.seal(key, here, b"x")  # a fresh nonce each time


@pytest.mark.usefixtures("aws")
def test_a_key_is_stored_wrapped_read_back_and_gone_when_deleted_or_expired() -> None:
    now = clock.now()
    session_id = str(uuid.uuid4())
    item, key = conversation_keys.new(session_id, now + timedelta(hours=1))
    item.save()
    raw = boto3.client("dynamodb").get_item(
        TableName=get_settings().keys_table, Key={"pk": {"S": session_id}}
    )
    assert key not in raw["Item"]["wrapped"]["B"]  # wrapped, never the key itself
    conversation_keys.forget()
    assert conversation_keys.read(session_id, now) == key  # one read, unwrapped
    assert conversation_keys.cached(session_id, now) == key
    assert conversation_keys.read(session_id, now + timedelta(hours=2)) is None  # past its TTL
    conversation_keys.forget()
    secret.forget()  # a new cold start: the wrapping key is derived again from the secret
    assert conversation_keys.read_many([session_id, str(uuid.uuid4())], now) == {session_id: key}
    conversation_keys.KeyItem(session_id).delete()
    conversation_keys.forget()
    assert conversation_keys.read(session_id, now) is None


@pytest.mark.usefixtures("aws")
def test_a_wrapped_key_copied_to_another_session_does_not_unwrap() -> None:
    now = clock.now()
    item, _ = conversation_keys.new(str(uuid.uuid4()), now + timedelta(hours=1))
    stolen = conversation_keys.KeyItem(str(uuid.uuid4()), wrapped=item.wrapped, expires_at=item.expires_at)
    stolen.save()
    conversation_keys.forget()
    with pytest.raises(seal.SealBroken):
        conversation_keys.read(stolen.pk, now)


@pytest.mark.usefixtures("aws")
def test_that_a_session_has_no_key_is_remembered_until_a_reader_reads_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A legacy session served again within CACHE_SECONDS costs no lookup; a reader that then finds
    it keyed (seal-legacy gave it its key meanwhile) reads the stored key afresh."""
    now = clock.now()
    session_id = str(uuid.uuid4())
    gets: list[str] = []
    real_get = conversation_keys.KeyItem.get

    def counted(*args: object, **kwargs: object) -> conversation_keys.KeyItem:
        gets.append(str(args[0]))
        return real_get(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(conversation_keys.KeyItem, "get", counted)
    conversation_keys.forget()
    assert conversation_keys.read(session_id, now) is None
    assert conversation_keys.held(session_id, now)
    assert conversation_keys.read(session_id, now) is None
    assert conversation_keys.read_many([session_id], now) == {}
    assert gets == [session_id]  # one lookup for all three
    item, key = conversation_keys.new(session_id, now + timedelta(hours=1))
    item.save()  # given its key meanwhile, by another process
    assert conversation_keys.read(session_id, now) is None  # this process still says none
    assert conversation_keys.named(session_id, conversation_keys.key_id(key), now, None) == key
    assert conversation_keys.read(session_id, now) == key  # and holds it now
    assert len(gets) == 2


@pytest.mark.usefixtures("aws")
def test_on_a_cold_start_the_secret_is_read_beside_the_key_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the secret nor the key held: both requests are sent at once (one round trip of latency,
    not two). The key item's read waits for the secret's to begin: sent one after the other, it
    would wait in vain."""
    now = clock.now()
    session_id = str(uuid.uuid4())
    item, key = conversation_keys.new(session_id, now + timedelta(hours=1))
    item.save()
    conversation_keys.forget()
    secret.forget()
    secret_begun = threading.Event()
    real_master, real_get = secret._master_key, conversation_keys.KeyItem.get

    def master() -> bytes:
        secret_begun.set()
        return real_master()

    def key_get(*args: object, **kwargs: object) -> conversation_keys.KeyItem:
        assert secret_begun.wait(timeout=5), "the secret's read waited for the key item's"
        return real_get(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(secret, "_master_key", master)
    monkeypatch.setattr(conversation_keys.KeyItem, "get", key_get)
    assert conversation_keys.read(session_id, now) == key
    secret_begun.clear()
    assert secret.held()
    other, other_key = conversation_keys.new(str(uuid.uuid4()), now + timedelta(hours=1))
    other.save()
    monkeypatch.setattr(conversation_keys.KeyItem, "get", real_get)
    assert conversation_keys.read(other.pk, now) == other_key
    assert not secret_begun.is_set()  # held: not read again
