"""Sealing legacy sessions in place (logic/seal_legacy.py, `make admin ARGS="seal-legacy"`): a session
written before conversations had keys gets its own key and its plaintext is replaced by sealed values;
the service reads it the same before, during and after; running twice, being interrupted, racing an
append, a PATCH or an erase leave every session whole; a dry run writes nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys, erasure, history, messages, replies
from chatvault.dal import seal_legacy as store
from chatvault.logic import seal_legacy as logic
from chatvault.logic.check_restore import check_restore
from chatvault.logic.erase_by_operator import erase_by_operator
from chatvault.logic.seal_legacy import SealLegacy, seal_legacy
from tests.helpers import call, create, partition, unseal_in_place

pytestmark = pytest.mark.usefixtures("aws", "jwt_mode")
OWNER = "alice"
SESSIONS = "/api/v1/sessions"
PLAINTEXT = ("preview", "title", "metadata", "content", "meta", "feedback")
SEALED = ("sealed_preview", "sealed_title", "sealed_metadata", "sealed")
MESSAGES = 3


def _ddb() -> Any:
    return boto3.client("dynamodb")


def _items(session_id: str) -> list[dict[str, Any]]:
    return partition(session_id)


def _item(session_id: str, sort_key: str) -> dict[str, Any]:
    (item,) = [i for i in _items(session_id) if i["sk"]["S"] == sort_key]
    return item


def _everything() -> dict[str, list[dict[str, Any]]]:
    """Every item of every table, sorted: what a run must leave byte for byte."""
    ddb = _ddb()
    tables = {}
    for name in ddb.list_tables()["TableNames"]:
        items = ddb.scan(TableName=name, ConsistentRead=True)["Items"]
        tables[name] = sorted(items, key=lambda i: json.dumps(i, sort_keys=True, default=repr))
    return tables


def _key_item(session_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        _ddb()
        .get_item(TableName=get_settings().keys_table, Key={"pk": {"S": session_id}}, ConsistentRead=True)
        .get("Item")
    )
    return found


def _conversation(marker: str, messages: int = MESSAGES) -> str:
    """A session of OWNER's with a title, metadata and messages (with metadata), each holding `marker`."""
    created = create(
        subject=OWNER, body={"title": f"title {marker}", "metadata": {"topic": f"topic {marker}"}}
    ).body
    sid = str(created["session_id"])
    for n in range(messages):
        _append(sid, f"words {marker} {n}", {"attributes": {"note": f"meta {marker} {n}"}})
    return sid


def _append(session_id: str, content: str, metadata: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"role": "user", "content": content}
    if metadata:
        body["metadata"] = metadata
    reply = call("POST", f"{SESSIONS}/{session_id}/messages", subject=OWNER, body=body)
    assert reply.status == 201, reply.body


def _legacy(marker: str, messages: int = MESSAGES) -> str:
    session_id = _conversation(marker, messages)
    unseal_in_place(session_id)
    items = _items(session_id)
    assert not any(name in item for item in items for name in SEALED)
    assert any(marker in item.get("content", {}).get("S", "") for item in items)
    return session_id


def _reads(session_id: str) -> dict[str, Any]:
    """What the service's read paths answer for the session: its get, its history (a first page and
    pages of one message each, both ways), its place in the owner's list, its export, and the chat's
    context. Read by a process that holds no key (as after a deployment)."""
    conversation_keys.forget()
    path = f"{SESSIONS}/{session_id}"
    got = call("GET", path, subject=OWNER)
    assert got.status == 200, got.body
    history_page = call("GET", f"{path}/messages", subject=OWNER)
    assert history_page.status == 200, history_page.body
    paged, cursor = [], None
    while True:
        reply = call(
            "GET",
            f"{path}/messages",
            subject=OWNER,
            query="limit=1" + (f"&cursor={quote(cursor)}" if cursor else ""),
        )
        assert reply.status == 200, reply.body
        paged += reply.body["items"]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    newest = call("GET", f"{path}/messages", subject=OWNER, query="order=desc&limit=2")
    assert newest.status == 200, newest.body
    listed = call("GET", SESSIONS, subject=OWNER)
    assert listed.status == 200, listed.body
    exported = call("GET", f"{path}/export", subject=OWNER)
    assert exported.status == 200, exported.body
    export = {k: v for k, v in exported.body.items() if k != "exported_at"}
    conversation_keys.forget()
    key = conversation_keys.sealing_key(session_id, clock.now())
    context = [(m.role, m.content, m.metadata) for m in replies.context(session_id, 50, key)]
    return {
        "session": got.body,
        "messages": history_page.body,
        "paged": paged,
        "newest": newest.body,
        "listed": [s for s in listed.body["items"] if s["session_id"] == session_id],
        "export": export,
        "context": context,
    }


def _assert_sealed(session_id: str, marker: str) -> None:
    """No item of any table holds the marker or a plaintext attribute; the session is keyed."""
    encoded = marker.encode()
    for table, items in _everything().items():
        for item in items:
            for name, value in item.items():
                ((_, raw),) = value.items()
                text = raw if isinstance(raw, bytes) else json.dumps(raw, default=str).encode()
                assert encoded not in text, (table, name, item)
            if table == get_settings().table_name:
                assert not [name for name in PLAINTEXT if name in item], item
    head = _item(session_id, "#S")
    assert "key_id" in head
    assert "key_expires_at" in head
    assert _key_item(session_id) is not None


def _marker() -> str:
    return f"legacy-{uuid.uuid4().hex[:12]}"


def test_a_legacy_session_is_sealed_and_reads_the_same() -> None:
    marker, other = _marker(), _marker()
    sid = _legacy(marker)
    keyed = _conversation(other)  # created with its key: left as it is
    before = _reads(sid)
    assert before["session"]["title"] == f"title {marker}"
    assert before["session"]["metadata"] == {"topic": f"topic {marker}"}
    assert marker in before["session"]["preview"]
    assert len(before["messages"]["items"]) == len(before["paged"]) == MESSAGES
    assert before["listed"]
    assert len(before["export"]["messages"]) == MESSAGES
    assert before["messages"]["items"][0]["metadata"] == {"attributes": {"note": f"meta {marker} 0"}}
    keyed_items = _items(keyed)

    report = seal_legacy()

    assert report == SealLegacy(
        sessions=2, legacy=1, already_keyed=1, sealed=1, items_sealed=2 + MESSAGES, dry_run=False
    )
    _assert_sealed(sid, marker)
    head = _item(sid, "#S")
    assert int(head["key_expires_at"]["N"]) == int(head["expires_at"]["N"])  # the key's TTL is the session's
    assert int(_key_item(sid)["expires_at"]["N"]) == int(head["expires_at"]["N"])  # type: ignore[index]
    assert _reads(sid) == before
    assert _items(keyed) == keyed_items


def test_feedback_given_on_a_legacy_session_is_sealed_with_it() -> None:
    marker = _marker()
    sid = _legacy(marker, messages=1)
    chat = call("POST", f"{SESSIONS}/{sid}/chat", subject=OWNER, body={"content": f"ask {marker}"})
    assert chat.status == 201, chat.body
    reply_id = chat.body["reply"]["message_id"]
    rated = call(
        "PUT",
        f"{SESSIONS}/{sid}/messages/{reply_id}/feedback",
        subject=OWNER,
        body={"rating": "down", "comment": f"comment {marker}"},
    )
    assert rated.status == 200, rated.body
    (rated_item,) = [i for i in _items(sid) if i.get("message_id", {}).get("S") == reply_id]
    assert marker in rated_item["feedback"]["S"]  # a legacy session's message: plaintext, as it is
    before = _reads(sid)
    assert before["messages"]["items"][-1]["feedback"]["comment"] == f"comment {marker}"
    report = seal_legacy()
    assert report.items_sealed == 2 + 3  # its session item, profile and three messages
    _assert_sealed(sid, marker)
    assert _reads(sid) == before


def test_running_twice_changes_nothing() -> None:
    marker = _marker()
    sid = _legacy(marker)
    first = seal_legacy()
    assert (first.sealed, first.items_sealed) == (1, 2 + MESSAGES)
    reads = _reads(sid)
    after_first = _everything()  # (reads write too: an export's audit entry and charge)

    second = seal_legacy()

    assert second == SealLegacy(sessions=1, legacy=0, already_keyed=1)
    assert _everything() == after_first
    assert _reads(sid) == reads


def test_a_dry_run_counts_and_writes_nothing() -> None:
    sid = _legacy(_marker())
    before = _everything()
    report = seal_legacy(dry_run=True)
    assert report == SealLegacy(sessions=1, legacy=1, sealed=1, items_sealed=2 + MESSAGES, dry_run=True)
    assert _everything() == before
    assert "key_id" not in _item(sid, "#S")


def test_interrupted_after_its_key_the_session_reads_whole_and_a_rerun_finishes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = _marker()
    sid = _legacy(marker)
    before = _reads(sid)

    def killed(session_id: str) -> Iterator[list[dict[str, Any]]]:
        raise RuntimeError("the operator's process died")
        yield []

    monkeypatch.setattr(store, "plaintext", killed)
    with pytest.raises(RuntimeError):
        seal_legacy()
    monkeypatch.undo()

    # keyed, every item still plaintext: it reads whole
    head = _item(sid, "#S")
    expires = int(head["expires_at"]["N"])
    assert store.head(sid) == store.Head(sid, head["key_id"]["S"], expires, erasing=False, plaintext=True)
    assert _key_item(sid) is not None
    assert not any(name in item for item in _items(sid) for name in SEALED)
    assert _reads(sid) == before
    # a restore check keeps it whole: it has its key
    count = len(_items(sid))
    checked = check_restore()
    assert (checked.kept, checked.legacy, checked.removed_sessions) == (1, 0, 0)
    assert len(_items(sid)) == count
    # a dry run counts what a rerun would finish, and writes nothing
    unchanged = _everything()
    dry = seal_legacy(dry_run=True)
    assert dry == SealLegacy(sessions=1, already_keyed=1, resumed=1, items_sealed=2 + MESSAGES, dry_run=True)
    assert _everything() == unchanged

    again = seal_legacy()
    assert again == SealLegacy(sessions=1, already_keyed=1, resumed=1, items_sealed=2 + MESSAGES)
    _assert_sealed(sid, marker)
    assert _reads(sid) == before


def test_interrupted_midway_through_its_items_it_reads_whole_and_a_rerun_finishes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = _marker()
    sid = _legacy(marker, messages=6)
    before = _reads(sid)
    real, lock, writes = store.seal_item, threading.Lock(), [0]

    def dies_after_three(raw: dict[str, Any], key: bytes) -> bool:
        with lock:
            writes[0] += 1
            if writes[0] > 3:
                raise RuntimeError("the operator's process died")
        return real(raw, key)

    monkeypatch.setattr(store, "seal_item", dies_after_three)
    with pytest.raises(RuntimeError):
        seal_legacy()
    monkeypatch.undo()

    items = _items(sid)
    sealed = [i for i in items if any(name in i for name in SEALED)]
    plain = [i for i in items if any(name in i for name in PLAINTEXT)]
    assert len(sealed) == 3
    assert len(plain) == 2 + 6 - 3
    # each item whole: sealed or plaintext, never half of each
    assert not [i for i in sealed if any(name in i for name in PLAINTEXT)]
    assert _reads(sid) == before

    again = seal_legacy()
    assert (again.resumed, again.sealed, again.items_sealed) == (1, 0, 2 + 6 - 3)
    _assert_sealed(sid, marker)
    assert _reads(sid) == before


def test_an_append_and_a_patch_between_the_two_steps_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """They land after the session has its key (so they are sealed by their writers) and after step 2
    read the items it is about to seal: its conditional writes leave what they wrote alone."""
    marker = _marker()
    sid = _legacy(marker)
    real = store.plaintext

    def with_writers_between(session_id: str) -> Iterator[list[dict[str, Any]]]:
        for page in real(session_id):
            _append(session_id, f"late words {marker}")
            patched = call(
                "PATCH", f"{SESSIONS}/{session_id}", subject=OWNER, body={"title": f"renamed {marker}"}
            )
            assert patched.status == 200, patched.body
            yield page  # as read before those writes

    monkeypatch.setattr(store, "plaintext", with_writers_between)
    report = seal_legacy()
    monkeypatch.undo()

    assert report.sealed == 1
    _assert_sealed(sid, marker)
    reads = _reads(sid)
    assert reads["session"]["title"] == f"renamed {marker}"
    assert reads["session"]["metadata"] == {"topic": f"topic {marker}"}
    assert reads["session"]["preview"] == f"late words {marker}"
    contents = [m["content"] for m in reads["messages"]["items"]]
    assert contents == [*(f"words {marker} {n}" for n in range(MESSAGES)), f"late words {marker}"]
    assert seal_legacy() == SealLegacy(sessions=1, already_keyed=1)


def test_an_erased_or_expired_session_is_neither_keyed_nor_resurrected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marking, expired = _legacy(_marker()), _legacy(_marker())
    # being erased: marked, its items not yet removed (the panic button's Lambda died)
    at = clock.now()
    assert erasure.mark_erasing(marking, None, at, at + timedelta(days=1))
    past = str(int((at - timedelta(minutes=1)).timestamp()))
    _ddb().update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": expired}, "sk": {"S": "#S"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": past}},
    )
    before = {sid: _items(sid) for sid in (marking, expired)}

    report = seal_legacy()

    assert report == SealLegacy(sessions=2, legacy=2, skipped_erased=1, skipped_expired=1)
    for sid, items in before.items():
        assert _items(sid) == items
        assert _key_item(sid) is None


def test_a_session_erased_while_it_is_sealed_stays_erased(monkeypatch: pytest.MonkeyPatch) -> None:
    """Erased between the Scan and its key, or between its key and its items: no key is written, no
    item comes back."""
    before_key, before_items = _legacy(_marker()), _legacy(_marker())
    real_survey, real_plaintext = store.survey, store.plaintext

    def survey_then_erase() -> store.Survey:
        found = real_survey()
        assert erase_by_operator(before_key, "data_subject_request") is not None
        return found

    def read_then_erase(session_id: str) -> Iterator[list[dict[str, Any]]]:
        for page in real_plaintext(session_id):
            assert erase_by_operator(session_id, "data_subject_request") is not None
            yield page

    monkeypatch.setattr(store, "survey", survey_then_erase)
    monkeypatch.setattr(store, "plaintext", read_then_erase)
    monkeypatch.setattr(logic, "SESSION_WORKERS", 1)
    report = seal_legacy()

    assert (report.skipped_erased, report.sealed, report.items_sealed) == (1, 1, 0)
    for sid in (before_key, before_items):
        assert _items(sid) == []
        assert _key_item(sid) is None


def test_items_without_their_session_are_left_alone() -> None:
    """An expired session's profile or messages whose TTL has not fallen yet (the session item's went
    first): no session to give a key to."""
    sid = _legacy(_marker())
    _ddb().delete_item(TableName=get_settings().table_name, Key={"pk": {"S": sid}, "sk": {"S": "#S"}})
    before = _items(sid)
    assert seal_legacy() == SealLegacy(orphaned=1)
    assert _items(sid) == before
    assert _key_item(sid) is None


# ---- read paths while a session is being sealed -------------------------------------------------


def test_a_read_that_saw_the_session_before_its_key_reads_its_sealed_items() -> None:
    """A reader's requests are not one snapshot: the session item may be read before step 1 and its
    profile or messages after step 2. Every read path opens them under the key stored since."""
    marker = _marker()
    sid = _legacy(marker)
    before = _reads(sid)
    head_before = _item(sid, "#S")
    seal_legacy()
    _ddb().put_item(TableName=get_settings().table_name, Item=head_before)  # as read before step 1
    conversation_keys.forget()
    assert _reads(sid) == before
    assert replies.context(sid, 50, None) == replies.context(
        sid, 50, conversation_keys.read(sid, clock.now())
    )
    items = [raw for raw in _items(sid) if history.is_message(raw)]
    opened = history.messages_of(items, None)
    assert [m.content for m in opened] == [f"words {marker} {n}" for n in range(MESSAGES)]
    assert messages.get(sid, opened[0].position, None) == opened[0]  # an append's replay reads it so


def test_a_key_read_sent_before_step_1_does_not_make_the_session_missing() -> None:
    """KeySoon sends the key's read beside the session's: the key read may come back empty (before
    step 1) and the session item named a key (after it)."""
    sid = _legacy(_marker())
    soon = conversation_keys.KeySoon(sid)
    soon.settle()  # the key read has come back: none yet
    given = store.give_key(store.Head.of(_item(sid, "#S")))
    assert isinstance(given, bytes)
    assert soon.named(conversation_keys.key_id(given)) == given


def test_a_patch_that_read_no_key_before_step_1_is_written_under_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker = _marker()
    sid = _legacy(marker)
    real = conversation_keys.sealing_key

    def step_1_right_after(session_id: str, at: Any) -> bytes | None:
        key = real(session_id, at)
        if key is None:
            assert isinstance(store.give_key(store.Head.of(_item(session_id, "#S"))), bytes)
        return key

    monkeypatch.setattr(conversation_keys, "sealing_key", step_1_right_after)
    patched = call("PATCH", f"{SESSIONS}/{sid}", subject=OWNER, body={"title": "new title"})
    monkeypatch.undo()
    assert patched.status == 200, patched.body
    assert patched.body["title"] == "new title"
    profile = _item(sid, "!P")
    assert "sealed_title" in profile
    assert "title" not in profile
    assert call("GET", f"{SESSIONS}/{sid}", subject=OWNER).body["title"] == "new title"


def test_a_patch_that_clears_the_title_of_a_half_sealed_session_clears_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keyed, its profile still plaintext (interrupted after step 1): a PATCH removing the title and
    the metadata removes their plaintext too, or the old ones would read again."""
    sid = _legacy(_marker())
    given = store.give_key(store.Head.of(_item(sid, "#S")))
    assert isinstance(given, bytes)
    patched = call("PATCH", f"{SESSIONS}/{sid}", subject=OWNER, body={"title": None, "metadata": {}})
    assert patched.status == 200, patched.body
    conversation_keys.forget()
    got = call("GET", f"{SESSIONS}/{sid}", subject=OWNER).body
    assert (got["title"], got["metadata"]) == (None, {})
    profile = _item(sid, "!P")
    assert not [name for name in ("title", "metadata", "sealed_title", "sealed_metadata") if name in profile]
