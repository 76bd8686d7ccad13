"""The restore copy (logic/copy_restore.py, `make admin ARGS="restore-copy --table T"`): from a restored
table, the items the live table lost come back, and only those: nothing live is overwritten, no
erased, expired or inconsistent conversation comes back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys, restore
from chatvault.logic.copy_restore import RestoreCopy, copy_restore
from tests.helpers import call, partition, unseal_in_place

pytestmark = pytest.mark.usefixtures("aws")
RESTORED = "chatvault-local-SessionsTable-restored"
_tokens: dict[str, str] = {}


def _ddb() -> Any:
    return boto3.client("dynamodb")


def _session(messages: int = 3, session_id: str | None = None) -> str:
    body: dict[str, Any] = {"title": "t", "metadata": {"k": "v"}}
    if session_id is not None:
        body["session_id"] = session_id
    created = call("POST", "/api/v1/sessions", body=body).body
    sid = str(created["session_id"])
    _tokens[sid] = created["session_token"]
    for n in range(messages):
        _append(sid, f"m{n}", message_id=str(uuid.uuid4()) if n == 0 else None)
    return sid


def _append(session_id: str, content: str, message_id: str | None = None) -> None:
    body: dict[str, Any] = {"role": "user", "content": content}
    if message_id is not None:
        body["message_id"] = message_id
    reply = call("POST", f"/api/v1/sessions/{session_id}/messages", body=body, token=_tokens[session_id])
    assert reply.status == 201, reply.body


def _items(session_id: str, table: str | None = None) -> dict[str, dict[str, Any]]:
    return {item["sk"]["S"]: item for item in partition(session_id, table)}


def _restore() -> None:
    """A point-in-time restore: a new table, the live one's schema, every item as it is now."""
    ddb, live = _ddb(), get_settings().table_name
    table = ddb.describe_table(TableName=live)["Table"]
    ddb.create_table(
        TableName=RESTORED,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=[a for a in table["AttributeDefinitions"] if a["AttributeName"] in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in ddb.scan(TableName=live)["Items"]:
        ddb.put_item(TableName=RESTORED, Item=item)


def _lose(session_id: str, *sort_keys: str) -> None:
    """Items deleted from the live table by mistake (every item of the partition when none named)."""
    for sk in sort_keys or list(_items(session_id)):
        _ddb().delete_item(
            TableName=get_settings().table_name, Key={"pk": {"S": session_id}, "sk": {"S": sk}}
        )


def _read(session_id: str) -> tuple[dict[str, Any], list[str]]:
    """The session and its messages' contents, through the service."""
    token = _tokens[session_id]
    session = call("GET", f"/api/v1/sessions/{session_id}", token=token)
    assert session.status == 200, session.body
    page = call("GET", f"/api/v1/sessions/{session_id}/messages", token=token)
    assert page.status == 200, page.body
    return session.body, [m["content"] for m in page.body["items"]]


def _messages(session_id: str) -> list[str]:
    return sorted(sk for sk in _items(session_id) if sk.startswith("M#"))


def _counts(report: RestoreCopy) -> dict[str, int]:
    return report.model_dump(exclude={"dry_run"})


def test_a_conversation_deleted_from_the_live_table_comes_back_whole_and_reads_as_before() -> None:
    sid = _session()
    before = _read(sid)
    stored = _items(sid)
    _restore()
    _lose(sid)
    assert call("GET", f"/api/v1/sessions/{sid}", token=_tokens[sid]).status == 404
    conversation_keys.forget()

    report = copy_restore(RESTORED)
    assert _counts(report) == {
        "sessions": 1,
        "copied_sessions": 1,
        "copied_items": len(stored),
        "present": 0,
        "skipped_erased": 0,
        "skipped_expired": 0,
        "skipped_unsafe": 0,
        "legacy": 0,
    }
    assert _items(sid) == stored  # attribute for attribute
    assert _read(sid) == before
    _append(sid, "after")  # its counters agree with its messages: appends go on
    session, contents = _read(sid)
    assert (session["message_count"], contents[-1]) == (4, "after")


def test_an_item_present_in_the_live_table_is_never_overwritten() -> None:
    sid = _session()
    _restore()
    first, second, _ = _messages(sid)
    changed = {**_items(sid)[first], "role": {"S": "changed live"}}
    _ddb().put_item(TableName=get_settings().table_name, Item=changed)
    renamed = call("PATCH", f"/api/v1/sessions/{sid}", body={"title": "renamed live"}, token=_tokens[sid])
    assert renamed.status == 200, renamed.body
    _lose(sid, second)
    live = _items(sid)

    report = copy_restore(RESTORED)
    assert (report.copied_items, report.present) == (1, len(live))
    after = _items(sid)
    assert {sk: after[sk] for sk in live} == live  # every live item exactly as it was
    assert after[second] == _items(sid, RESTORED)[second]
    session, contents = _read(sid)
    assert (session["title"], contents) == ("renamed live", ["m0", "m1", "m2"])


def test_messages_deleted_by_a_bug_come_back_beside_the_live_session_and_later_ones_stay() -> None:
    sid = _session()
    _restore()
    _append(sid, "m3")  # after the restore point: only in the live table
    lost = _messages(sid)[:2]
    _lose(sid, *lost, "!P")
    # a day of activity since moved the profile's TTL (the session item says how far)
    expected = int(_items(sid)["#S"]["profile_expires_at"]["N"]) + 86_400
    _ddb().update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": sid}, "sk": {"S": "#S"}},
        UpdateExpression="SET profile_expires_at = :p",
        ExpressionAttributeValues={":p": {"N": str(expected)}},
    )

    report = copy_restore(RESTORED)
    assert (report.copied_items, report.skipped_unsafe) == (3, 0)
    session, contents = _read(sid)
    assert (session["title"], session["message_count"], contents) == ("t", 4, ["m0", "m1", "m2", "m3"])
    # the profile came back with the TTL the live session expects of it
    assert int(_items(sid)["!P"]["expires_at"]["N"]) == expected


def test_what_the_live_session_does_not_count_is_held_back() -> None:
    """A restored message above the live session's last position, and a whole partition whose live
    part holds an item the restored one does not: copying either could break the counters."""
    beside, whole = _session(), _session()
    _restore()
    above = f"M#{'9' * 20}"
    _ddb().put_item(
        TableName=RESTORED, Item={**_items(beside, RESTORED)[_messages(beside)[0]], "sk": {"S": above}}
    )
    _append(whole, "since")  # a message the restored session item does not count
    since = _messages(whole)[-1]
    _lose(whole, *[sk for sk in _items(whole) if sk != since])
    live = {sid: _items(sid) for sid in (beside, whole)}

    report = copy_restore(RESTORED)
    assert (report.copied_items, report.skipped_unsafe) == (0, 1 + len(_items(whole, RESTORED)))
    assert {sid: _items(sid) for sid in (beside, whole)} == live


def _erase(session_id: str) -> None:
    reply = call("DELETE", f"/api/v1/sessions/{session_id}", token=_tokens[session_id])
    assert reply.status in (200, 202, 204), reply.body


def test_an_erased_conversation_is_never_copied() -> None:
    erased, remade, remade_lost = _session(), _session(), _session()
    _restore()
    _erase(erased)
    # erased, and made again under the same id: another conversation, under another key (the second
    # one then lost from the live table too: its key is live, but not the key the restored one names)
    for sid in (remade, remade_lost):
        _erase(sid)
        _session(messages=0, session_id=sid)
    _lose(remade_lost)
    live = _items(remade)
    conversation_keys.forget()

    report = copy_restore(RESTORED)
    assert (report.skipped_erased, report.copied_items, report.copied_sessions) == (3, 0, 0)
    assert _items(erased) == _items(remade_lost) == {}
    assert _items(remade) == live


def test_an_erase_between_two_batches_stops_the_copy_and_the_final_check_removes_what_got_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runbook's last step, `restore-check` on the live table, removes what an erase racing with
    the copy left (written before the key went)."""
    from chatvault.logic.check_restore import check_restore

    sid = _session()
    _restore()
    _lose(sid)
    monkeypatch.setattr(restore, "MAX_PUTS", 2)
    put_absent: Callable[..., None] = restore.put_absent
    calls = []

    def erased_after_the_first(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) == 2:
            conversation_keys.KeyItem(sid).delete()
        put_absent(*args, **kwargs)

    monkeypatch.setattr(restore, "put_absent", erased_after_the_first)
    report = copy_restore(RESTORED)
    assert (report.skipped_erased, report.copied_sessions, report.copied_items) == (1, 1, 2)
    assert "#S" in _items(sid)
    conversation_keys.forget()
    assert check_restore().removed_sessions == 1
    assert _items(sid) == {}


def test_a_conversation_larger_than_a_transaction_comes_back_in_batches_its_session_item_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = _session()
    before = _read(sid)
    _restore()
    _lose(sid)
    monkeypatch.setattr(restore, "MAX_PUTS", 2)
    put_absent: Callable[..., None] = restore.put_absent
    batches: list[list[str]] = []

    def recorded(session_id: str, raws: list[dict[str, Any]], **kwargs: Any) -> None:
        batches.append([raw["sk"]["S"] for raw in raws])
        put_absent(session_id, raws, **kwargs)

    monkeypatch.setattr(restore, "put_absent", recorded)
    report = copy_restore(RESTORED)
    assert report.copied_items == len(_items(sid, RESTORED)) == sum(len(b) for b in batches)
    assert batches[0][0] == "#S"
    assert len(batches) > 2
    conversation_keys.forget()
    assert _read(sid) == before


def test_a_key_erased_between_the_check_and_the_write_lets_nothing_of_it_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = _session()
    _restore()
    _lose(sid)
    put_absent: Callable[..., None] = restore.put_absent

    def erased_meanwhile(*args: Any, **kwargs: Any) -> None:
        conversation_keys.KeyItem(sid).delete()
        put_absent(*args, **kwargs)

    monkeypatch.setattr(restore, "put_absent", erased_meanwhile)
    report = copy_restore(RESTORED)
    assert (report.skipped_erased, report.copied_items) == (1, 0)
    assert _items(sid) == {}


def test_an_item_written_between_the_read_and_the_copy_wins_and_the_rest_still_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each Put is conditioned on the item being absent: one that appears meanwhile refuses the batch,
    which is planned again from the live partition, without it."""
    sid = _session()
    _restore()
    first, *rest = _messages(sid)
    _lose(sid, first, *rest)
    meanwhile = {**_items(sid, RESTORED)[first], "role": {"S": "written meanwhile"}}
    put_absent: Callable[..., None] = restore.put_absent
    calls = []

    def racing(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            _ddb().put_item(TableName=get_settings().table_name, Item=meanwhile)
        put_absent(*args, **kwargs)

    monkeypatch.setattr(restore, "put_absent", racing)
    report = copy_restore(RESTORED)
    assert len(calls) == 2
    assert (report.copied_items, report.present) == (len(rest), len(_items(sid)) - len(rest))
    assert _items(sid)[first] == meanwhile
    assert [sk for sk in rest if _items(sid)[sk] == _items(sid, RESTORED)[sk]] == rest


def test_legacy_partitions_come_back_unless_the_audit_trail_says_they_were_erased() -> None:
    lost, erased = _legacy(), _legacy()
    _restore()
    _lose(lost)
    _erase(erased)
    assert _items(erased) == {}

    report = copy_restore(RESTORED)
    assert (report.legacy, report.skipped_erased, report.copied_sessions) == (2, 1, 1)
    assert _items(lost) == _items(lost, RESTORED)
    assert _read(lost)[0]["title"] == "t"
    assert _items(erased) == {}


def _mark(table: str, session_id: str) -> None:
    """An erase begun (dal/erasure.py mark_erasing; a legacy session has no key for it to delete)."""
    _ddb().update_item(
        TableName=table,
        Key={"pk": {"S": session_id}, "sk": {"S": "#S"}},
        UpdateExpression="SET deleted_at = :at, erasing = :e",
        ExpressionAttributeValues={":at": {"S": clock.iso(clock.now())}, ":e": {"S": "pending"}},
    )


def test_a_conversation_being_erased_here_or_there_is_never_copied() -> None:
    """Legacy partitions (no key to check, no audit entry yet): an erase begun before the restore
    point, its partition since lost; an erase under way in the live table."""
    marked_then, marked_now = _legacy(), _legacy()
    _restore()
    _mark(RESTORED, marked_then)
    _lose(marked_then)
    _mark(get_settings().table_name, marked_now)
    _lose(marked_now, _messages(marked_now)[0])
    live = _items(marked_now)

    report = copy_restore(RESTORED)
    assert (report.skipped_erased, report.copied_items) == (2, 0)
    assert _items(marked_then) == {}
    assert _items(marked_now) == live


def test_plaintext_never_goes_back_into_a_conversation_sealed_since() -> None:
    sid = _legacy()
    _restore()
    # sealed since (an operator's migration: dal/aws/items.py): its session item names a key now
    _ddb().update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": sid}, "sk": {"S": "#S"}},
        UpdateExpression="SET key_id = :k",
        ExpressionAttributeValues={":k": {"S": "0123456789abcdef"}},
    )
    lost = _messages(sid)[0]
    _lose(sid, lost)
    report = copy_restore(RESTORED)
    assert (report.copied_items, report.skipped_erased) == (0, 1)
    assert lost not in _items(sid)


def _legacy() -> str:
    """A session written before conversations had keys: plaintext items, no key."""
    sid = _session(messages=2)
    unseal_in_place(sid)
    return sid


def test_expired_items_are_not_copied() -> None:
    expired, beside = _session(), _session()
    _restore()
    past = str(int((clock.now() - timedelta(minutes=1)).timestamp()))
    restored = _items(expired, RESTORED)
    _ddb().put_item(TableName=RESTORED, Item={**restored["#S"], "expires_at": {"N": past}})
    message = _messages(beside)[0]
    _ddb().put_item(TableName=RESTORED, Item={**_items(beside, RESTORED)[message], "expires_at": {"N": past}})
    _lose(expired)
    _lose(beside, message)

    report = copy_restore(RESTORED)
    assert (report.skipped_expired, report.copied_items) == (len(restored) + 1, 0)
    assert _items(expired) == {}
    assert message not in _items(beside)


def test_session_restricts_the_copy_to_those_sessions() -> None:
    chosen, other = _session(), _session()
    _restore()
    _lose(chosen)
    _lose(other)
    report = copy_restore(RESTORED, [chosen, str(uuid.uuid4())])
    assert (report.sessions, report.copied_sessions) == (1, 1)
    assert _items(chosen) == _items(chosen, RESTORED)
    assert _items(other) == {}


def test_a_dry_run_writes_nothing_and_a_second_run_copies_nothing() -> None:
    sid = _session()
    _restore()
    _lose(sid)
    n = len(_items(sid, RESTORED))

    dry = copy_restore(RESTORED, dry_run=True)
    assert (dry.dry_run, dry.copied_sessions, dry.copied_items) == (True, 1, n)
    assert _items(sid) == {}

    assert copy_restore(RESTORED).copied_items == n
    again = copy_restore(RESTORED)
    assert (again.copied_sessions, again.copied_items, again.present) == (0, 0, n)


def test_the_restored_table_must_not_be_the_live_one() -> None:
    _session()
    with pytest.raises(ValueError, match="live table"):
        copy_restore(get_settings().table_name)


def test_batches_keep_within_a_transactions_limits() -> None:
    big = {"pk": {"S": "p"}, "sk": {"S": "M#1"}, "sealed": {"B": b"x" * 390_000}}
    small = {"pk": {"S": "p"}, "sk": {"S": "M#2"}}
    assert [len(b) for b in restore.batches([big] * 20)] == [8, 8, 4]
    assert [len(b) for b in restore.batches([small] * 200)] == [98, 98, 4]
