"""Messages through their handlers under moto: append, order, idempotency, limits, pages, erase."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chatvault.core import clock
from chatvault.dal.aws import transaction as transaction_dal
from chatvault.logic.append_message import append_message
from chatvault.logic.rules.access import Caller
from chatvault.models.api import AppendMessageRequest
from tests.helpers import assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")
TABLE = "chatvault-local-SessionsTable"


def _session(**body: Any) -> tuple[str, str]:
    s = create(body=body).body
    return s["session_id"], s["session_token"]


def _append(sid: str, token: str, content: str = "hello", role: str = "user", **extra: Any) -> Any:
    """The user writes `user` messages with the session's token; the bot's back end writes the other
    roles through the service writer (ClientRoles is `user` by default)."""
    if role != "user":
        path = f"/api/v1/service/sessions/{sid}/messages"
        return call("POST", path, service=True, body={"role": role, "content": content, **extra})
    return call(
        "POST",
        f"/api/v1/sessions/{sid}/messages",
        token=token,
        body={"role": role, "content": content, **extra},
    )


def _list(sid: str, token: str, query: str = "") -> Any:
    return call("GET", f"/api/v1/sessions/{sid}/messages", token=token, query=query)


def _all(sid: str, token: str, order: str = "asc", limit: int = 7) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"order={order}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = _list(sid, token, query)
        assert page.status == 200, page.body
        assert len(page.body["items"]) <= limit
        items += page.body["items"]
        cursor = page.body["next_cursor"]
        if not cursor:
            return items


METADATA = {
    "tools_used": ["search"],
    "processing_time_ms": 12,
    "token_count": 9,
    "model": "m-1",
    "has_error": False,
    "attributes": {"k": "v"},
}


def test_append_returns_the_message_and_updates_the_session() -> None:
    sid, token = _session()
    reply = _append(
        sid,
        token,
        "Hi there, I need help with my account",
        metadata=METADATA,
    )

    assert reply.status == 201
    message = reply.body
    assert uuid.UUID(message["message_id"])
    assert message["session_id"] == sid
    assert message["role"] == "user"
    assert message["content"] == "Hi there, I need help with my account"
    assert message["metadata"] == METADATA
    session = call("GET", f"/api/v1/sessions/{sid}", token=token).body
    assert session["message_count"] == 1
    assert session["last_message_at"] == message["created_at"]
    assert session["preview"] == "Hi there, I need help with my account"


def test_preview_is_the_first_120_characters_of_the_newest_message() -> None:
    sid, token = _session()
    _append(sid, token, "first")
    _append(sid, token, "x" * 119 + "yz", role="assistant")
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["preview"] == "x" * 119 + "y"


def test_messages_list_in_append_order_both_ways_with_small_pages() -> None:
    sid, token = _session()
    sent = [_append(sid, token, f"m{i}", role=("user", "assistant")[i % 2]).body for i in range(23)]

    asc = _all(sid, token, "asc", limit=5)
    desc = _all(sid, token, "desc", limit=4)

    assert [m["content"] for m in asc] == [m["content"] for m in sent]
    assert [m["content"] for m in desc] == [m["content"] for m in reversed(sent)]
    assert asc == sent


def test_default_page_is_50_oldest_first() -> None:
    sid, token = _session()
    for i in range(55):
        _append(sid, token, f"m{i}")
    page = _list(sid, token).body
    assert [m["content"] for m in page["items"]] == [f"m{i}" for i in range(50)]
    assert page["next_cursor"]


def test_an_empty_history_is_an_empty_page() -> None:
    sid, token = _session()
    for order in ("asc", "desc"):
        assert _list(sid, token, f"order={order}").body == {"items": [], "next_cursor": None}


def test_retry_with_the_same_id_and_body_stores_nothing_new() -> None:
    sid, token = _session()
    mid = str(uuid.uuid4())
    first = _append(sid, token, "once", message_id=mid)
    again = _append(sid, token, "once", message_id=mid)

    assert first.status == 201
    assert again.status == 200
    assert again.body == first.body
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 1
    assert len(_all(sid, token)) == 1


def test_same_id_with_another_body_is_409() -> None:
    sid, token = _session()
    mid = str(uuid.uuid4())
    _append(sid, token, "original", message_id=mid)
    assert_error(_append(sid, token, "changed", message_id=mid), 409, "message_id_conflict")
    assert_error(
        _append(sid, token, "original", role="assistant", message_id=mid), 409, "message_id_conflict"
    )
    assert [m["content"] for m in _all(sid, token)] == ["original"]


def test_message_ids_are_per_session() -> None:
    a, ta = _session()
    b, tb = _session()
    mid = str(uuid.uuid4())
    assert _append(a, ta, "in a", message_id=mid).status == 201
    assert _append(b, tb, "in b", message_id=mid).status == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "robot", "content": "x"}, "body.role"),
        ({"role": "user", "content": ""}, "body.content"),
        ({"role": "user"}, "body.content"),
        ({"content": "x"}, "body.role"),
        ({"role": "user", "content": "x", "extra": 1}, "body.extra"),
        ({"role": "user", "content": "x", "message_id": "nope"}, "body.message_id"),
        ({"role": "user", "content": "x", "metadata": {"colour": "red"}}, "body.metadata.colour"),
        ({"role": "user", "content": "x", "metadata": {"token_count": -1}}, "body.metadata.token_count"),
        ({"role": "user", "content": "x", "metadata": {"token_count": "5"}}, "body.metadata.token_count"),
        ({"role": "user", "content": "x", "metadata": {"has_error": "yes"}}, "body.metadata.has_error"),
        (
            {"role": "user", "content": "x", "metadata": {"attributes": {f"k{i}": "v" for i in range(17)}}},
            "body.metadata.attributes",
        ),
    ],
)
def test_invalid_messages_are_422_and_write_nothing(body: dict[str, Any], field: str) -> None:
    sid, token = _session()
    reply = call("POST", f"/api/v1/sessions/{sid}/messages", token=token, body=body)
    assert_error(reply, 422, "validation_failed")
    assert any(d["field"].startswith(field) for d in reply.body["error"]["details"]), reply.body
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 0


def test_content_longer_than_the_limit_is_413() -> None:
    sid, token = _session()
    assert _append(sid, token, "é" * 32768).status == 201
    # the longest content still fits the body limit when every character arrives as a JSON escape pair
    assert _append(sid, token, "\U0001f600" * 32768).status == 201
    assert_error(_append(sid, token, "é" * 32769), 413, "message_too_large")
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 2


def test_the_limit_is_a_setting(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("MAX_MESSAGE_CHARS", "10")
    sid, token = _session()
    assert _append(sid, token, "x" * 10).status == 201
    assert_error(_append(sid, token, "x" * 11), 413, "message_too_large")


def test_a_session_at_max_session_messages_is_409_session_full_and_stores_nothing(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("MAX_SESSION_MESSAGES", "3")
    sid, token = _session()
    for n in range(3):
        assert _append(sid, token, f"m{n}").status == 201
    assert_error(_append(sid, token, "one too many"), 409, "session_full")
    assert_error(_append(sid, "", "the bot's reply", role="assistant"), 409, "session_full")
    assert [m["content"] for m in _all(sid, token)] == ["m0", "m1", "m2"]
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 3


def test_appends_to_missing_foreign_ended_or_expired_sessions_fail_and_write_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid, token = _session()
    other, other_token = _session()
    assert_error(_append(str(uuid.uuid4()), token), 404, "session_not_found")
    assert_error(_append(sid, other_token), 404, "session_not_found")
    assert_error(
        call("POST", f"/api/v1/sessions/{sid}/messages", body={"role": "user", "content": "x"}),
        401,
        "token_required",
    )
    assert_error(_append("not-a-uuid", token), 404, "session_not_found")

    call("PATCH", f"/api/v1/sessions/{other}", token=other_token, body={"status": "ended"})
    assert_error(_append(other, other_token), 409, "session_ended")

    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert_error(_append(sid, token), 404, "session_not_found")
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert not [i for i in items if i["sk"]["S"].startswith(("M#", "!I#"))]


def _appended_apart(
    monkeypatch: pytest.MonkeyPatch, first: str, second: str, apart: int, now: int
) -> tuple[str, str]:
    """A new session: `first` appended, `second` `apart` hours later; the clock then `now` hours after
    the first."""
    sid, token = _session()
    start = clock.now()
    _append(sid, token, first)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=apart))
    _append(sid, token, second)
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(hours=now))
    return sid, token


def test_append_slides_the_session_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    sid, token = _appended_apart(monkeypatch, "first", "second", apart=700, now=800)

    assert call("GET", f"/api/v1/sessions/{sid}", token=token).status == 200
    # the first message expired 720 hours after it was written; the session lives on
    assert [m["content"] for m in _list(sid, token).body["items"]] == ["second"]


def test_expired_messages_are_never_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    sid, token = _appended_apart(monkeypatch, "old", "new", apart=600, now=721)
    for order in ("asc", "desc"):
        assert [m["content"] for m in _all(sid, token, order, limit=1)] == ["new"]


def test_a_tampered_or_foreign_cursor_is_400() -> None:
    sid, token = _session()
    other, other_token = _session()
    for _ in range(3):
        _append(sid, token)
        _append(other, other_token)
    cursor = _list(sid, token, "limit=1").body["next_cursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert_error(_list(sid, token, f"cursor={tampered}"), 400, "invalid_cursor")
    assert_error(_list(other, other_token, f"cursor={cursor}"), 400, "invalid_cursor")


@pytest.mark.parametrize("first", ["asc", "desc"])
def test_a_cursor_keeps_its_order_whatever_order_the_next_request_names(first: str) -> None:
    """`order` and `cursor` are independent optional parameters in the document, so every pair of them
    is a valid request: the cursor decides, and the next page follows the previous one."""
    sid, token = _session()
    for i in range(5):
        _append(sid, token, f"m{i}")
    page = _list(sid, token, f"order={first}&limit=2").body
    other = "desc" if first == "asc" else "asc"

    for query in (f"order={other}&", f"order={first}&", ""):
        rest = _list(sid, token, f"{query}limit=2&cursor={page['next_cursor']}")
        assert rest.status == 200, rest.body
        assert [m["content"] for m in rest.body["items"]] == (
            ["m2", "m3"] if first == "asc" else ["m2", "m1"]
        )
        last = _list(sid, token, f"order={other}&cursor={rest.body['next_cursor']}").body
        assert [m["content"] for m in last["items"]] == (["m4"] if first == "asc" else ["m0"])
        assert last["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "order=sideways", "limt=5"])
def test_list_parameters_are_validated(query: str) -> None:
    sid, token = _session()
    assert_error(_list(sid, token, query), 422, "validation_failed")


def test_list_needs_the_right_token() -> None:
    sid, token = _session()
    _append(sid, token)
    assert_error(_list(sid, "wrong"), 404, "session_not_found")
    assert_error(call("GET", f"/api/v1/sessions/{sid}/messages"), 401, "token_required")
    cursor_page = _list(sid, token, "limit=1")
    assert cursor_page.status == 200


def test_delete_erases_all_messages_and_counts_them() -> None:
    sid, token = _session()
    for i in range(30):
        _append(sid, token, f"m{i}", message_id=str(uuid.uuid4()))
    receipt = call("DELETE", f"/api/v1/sessions/{sid}", token=token).body
    assert receipt["erased"]["messages"] == 30
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert not [i for i in items if i["pk"]["S"] == sid]
    assert_error(_list(sid, token), 404, "session_not_found")
    assert_error(_list(sid, token, "order=desc"), 404, "session_not_found")


def test_a_marked_session_lists_nothing_in_either_order() -> None:
    """A delete that died after its first step: the history must already be unreadable."""
    from chatvault.dal import erasure
    from chatvault.logic.rules.access import hash_token
    from chatvault.models.domain import Principal

    sid, token = _session()
    _append(sid, token, "secret")
    at = clock.now()
    assert erasure.mark_erasing(sid, Principal(token_hash=hash_token(token)), at, at + timedelta(hours=1))
    assert_error(_list(sid, token), 404, "session_not_found")
    assert_error(_list(sid, token, "order=desc"), 404, "session_not_found")
    assert_error(_append(sid, token, "more"), 404, "session_not_found")


def test_desc_first_page_falls_back_when_the_guard_is_gone() -> None:
    sid, token = _session()
    _append(sid, token, "a")
    _append(sid, token, "b")
    boto3.client("dynamodb").delete_item(TableName=TABLE, Key={"pk": {"S": sid}, "sk": {"S": "~G"}})
    assert [m["content"] for m in _list(sid, token, "order=desc&limit=1").body["items"]] == ["b"]
    assert_error(_list(sid, "wrong", "order=desc"), 404, "session_not_found")


def test_a_slow_clock_still_appends_after_the_newest_message(monkeypatch: pytest.MonkeyPatch) -> None:
    sid, token = _session()
    now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: now + timedelta(seconds=5))
    _append(sid, token, "from a fast clock")
    monkeypatch.setattr(clock, "now", lambda: now)  # another instance, 5 s behind
    _append(sid, token, "from a slow clock")
    assert [m["content"] for m in _all(sid, token)] == ["from a fast clock", "from a slow clock"]


def _append_directly(sid: str, token: str, content: str, message_id: str) -> tuple[Any, bool]:
    """The append use case itself, for many threads at once: each thread stands for one Lambda
    instance (Powertools' process-wide Metrics object is not meant to be shared by threads)."""
    request = AppendMessageRequest(role="user", content=content, message_id=uuid.UUID(message_id))
    return append_message(sid, request, Caller(token=token))


def test_fifty_concurrent_appends_are_all_stored_in_one_order() -> None:
    sid, token = _session()

    def send(i: int) -> tuple[Any, bool]:
        return _append_directly(sid, token, f"c{i}", str(uuid.uuid4()))

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(send, range(50)))

    assert all(created for _, created in replies)
    asc = _all(sid, token, "asc", limit=13)
    desc = _all(sid, token, "desc", limit=9)
    assert sorted(m["content"] for m in asc) == sorted(f"c{i}" for i in range(50))
    assert [m["message_id"] for m in desc] == [m["message_id"] for m in reversed(asc)]
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 50


def test_a_retry_storm_with_one_id_stores_exactly_one() -> None:
    sid, token = _session()
    mid = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda _: _append_directly(sid, token, "same", mid), range(30)))
    assert sorted(created for _, created in replies) == [False] * 29 + [True]
    assert len({message.created_at for message, _ in replies}) == 1
    assert len(_all(sid, token)) == 1
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 1


def test_append_writes_constant_bytes_whatever_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """The append request does not grow with the history (no rewrite of earlier messages)."""
    sid, token = _session()
    sizes: list[int] = []
    original = transaction_dal.TransactWrite._commit  # type: ignore[attr-defined]

    def measure(self: Any) -> Any:
        import json

        sizes.append(len(json.dumps([self._put_items, self._update_items], default=bytes.hex)))
        return original(self)

    monkeypatch.setattr(transaction_dal.TransactWrite, "_commit", measure)
    for i in range(60):
        _append(sid, token, "x" * 500, message_id=str(uuid.uuid4()), metadata={"token_count": i % 10})
    assert max(sizes) - min(sizes) < 40  # timestamps and counters only


def _stored(sid: str, sk: str) -> dict[str, Any]:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": sid}, "sk": {"S": sk}})["Item"]


def test_an_append_does_not_rewrite_the_title_and_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The title and metadata live in the profile (`!P`): an append to a session holding them at their
    limits sends what an append to an empty session sends, and leaves the profile as it was."""
    from tests.integration.test_worst_case import heaviest_session

    heavy = heaviest_session()
    sizes: dict[str, list[int]] = {}
    original = transaction_dal.TransactWrite._commit  # type: ignore[attr-defined]
    label = ""

    def measure(self: Any) -> Any:
        import json

        sent = json.dumps([self._put_items, self._update_items], default=bytes.hex)
        sizes.setdefault(label, []).append(len(sent))
        return original(self)

    monkeypatch.setattr(transaction_dal.TransactWrite, "_commit", measure)
    for label, body in (("empty", {}), ("heavy", heavy)):  # noqa: B007 - read by measure()
        sid, token = _session(**body)
        profile = _stored(sid, "!P")
        assert _append(sid, token, "x" * 500).status == 201
        assert _stored(sid, "!P") == profile
        session = _stored(sid, "#S")
        assert "title" not in session
        assert "metadata" not in session
    appends = {name: sent[-1] for name, sent in sizes.items()}  # the first one is the create
    assert abs(appends["heavy"] - appends["empty"]) < 40
    assert appends["heavy"] < 4000  # the session item, the message: no 37 KB profile


def test_the_profile_outlives_the_session_and_appends_refresh_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB's TTL must never remove the title and metadata of a live session: an append that would
    let the session outlive its profile refreshes the profile's TTL in the same transaction."""
    sid, token = _session(title="kept")
    start = clock.now()
    created_profile_ttl = int(_stored(sid, "!P")["expires_at"]["N"])
    assert created_profile_ttl > int(_stored(sid, "#S")["expires_at"]["N"])
    for days in (0.5, 2, 5):  # within the slack: untouched; beyond it: refreshed
        later = start + timedelta(days=days)
        monkeypatch.setattr(clock, "now", lambda later=later: later)
        assert _append(sid, token, f"after {days} days").status == 201
        session_ttl = int(_stored(sid, "#S")["expires_at"]["N"])
        profile_ttl = int(_stored(sid, "!P")["expires_at"]["N"])
        assert profile_ttl > session_ttl, days
        assert int(_stored(sid, "#S")["profile_expires_at"]["N"]) == profile_ttl
        if days == 0.5:
            assert profile_ttl == created_profile_ttl
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["title"] == "kept"
