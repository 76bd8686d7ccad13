"""jwt mode: the principal is the JWT's `sub` (verified by API Gateway's authorizer); a session exists
only for its creator; GET /sessions lists the caller's own sessions, newest activity first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chatvault.core import clock
from tests.helpers import assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws", "jwt_mode")

SESSIONS = "/api/v1/sessions"


def test_create_issues_no_token_and_needs_a_subject() -> None:
    reply = create(subject="alice", body={"title": "a"})
    assert reply.body["session_token"] is None
    assert_error(call("POST", SESSIONS, body={}), 401, "unauthenticated")


def test_a_session_exists_only_for_its_owner() -> None:
    sid = create(subject="alice").body["session_id"]
    path = f"{SESSIONS}/{sid}"

    assert call("GET", path, subject="alice").status == 200
    assert_error(call("GET", path, subject="mallory"), 404, "session_not_found")
    assert_error(call("PATCH", path, subject="mallory", body={"title": "x"}), 404, "session_not_found")
    assert_error(call("DELETE", path, subject="mallory"), 404, "session_not_found")
    # a session token is not a way in either
    assert_error(call("GET", path, token="anything"), 401, "unauthenticated")
    assert call("GET", path, subject="alice").status == 200
    assert call("DELETE", path, subject="alice").status == 200
    assert_error(call("GET", path, subject="alice"), 404, "session_not_found")


def test_list_shows_own_live_sessions_newest_activity_first(monkeypatch: pytest.MonkeyPatch) -> None:
    start = clock.now()
    ids = []
    for i in range(5):
        at = start + timedelta(seconds=i)
        monkeypatch.setattr(clock, "now", lambda at=at: at)
        ids.append(create(subject="alice", body={"title": f"s{i}"}).body["session_id"])
    create(subject="bob")
    # touching the oldest makes it the newest
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=10))
    assert call("PATCH", f"{SESSIONS}/{ids[0]}", subject="alice", body={"title": "touched"}).status == 200
    deleted = ids[2]
    assert call("DELETE", f"{SESSIONS}/{deleted}", subject="alice").status == 200

    reply = call("GET", SESSIONS, subject="alice")

    assert reply.status == 200
    listed = [s["session_id"] for s in reply.body["items"]]
    assert listed == [ids[0], ids[4], ids[3], ids[1]]
    assert reply.body["next_cursor"] is None


def test_list_pages_with_a_cursor() -> None:
    made = {create(subject="carol").body["session_id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = call("GET", SESSIONS, subject="carol", query=query).body
        assert len(page["items"]) <= 2
        seen += [s["session_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


def test_list_refuses_tampered_or_foreign_cursors() -> None:
    for _ in range(3):
        create(subject="dave")
    cursor = call("GET", SESSIONS, subject="dave", query="limit=1").body["next_cursor"]
    assert cursor
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert_error(call("GET", SESSIONS, subject="dave", query=f"cursor={tampered}"), 400, "invalid_cursor")
    assert_error(call("GET", SESSIONS, subject="erin", query=f"cursor={cursor}"), 400, "invalid_cursor")
    assert_error(call("GET", SESSIONS, subject="dave", query="cursor=garbage!"), 400, "invalid_cursor")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc"])
def test_list_limit_is_validated(query: str) -> None:
    assert_error(call("GET", SESSIONS, subject="dave", query=query), 422, "validation_failed")


def test_list_hides_expired_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    create(subject="frank")
    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert call("GET", SESSIONS, subject="frank").body["items"] == []
