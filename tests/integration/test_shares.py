"""Share links (issue 24, part 3): POST .../shares makes a read-only snapshot of the conversation as
it is, GET /shared/{share_id} reads it without credentials, DELETE revokes it; the panic button, an
operator's erase and expiry revoke every link; AllowSharing=false turns the routes off. In-process,
through the routes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import conversation_keys
from chatvault.dal.aws.items import ChatItem
from chatvault.logic.erase_by_operator import erase_by_operator
from chatvault.logic.rules import cursor
from tests.helpers import Reply, assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"
SHARED = "/api/v1/shared"


def _conversation(*said: str, body: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """A session with these user messages: its id, path and token."""
    session = create(body=body if body is not None else {"title": "Trip plans"}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"{SESSIONS}/{sid}"
    for text in said:
        reply = call("POST", f"{base}/messages", token=token, body={"role": "user", "content": text})
        assert reply.status == 201, reply.body
    return sid, base, token


def _share(base: str, token: str) -> dict[str, Any]:
    made = call("POST", f"{base}/shares", token=token)
    assert made.status == 201, made.body
    return dict(made.body)


def _shared(share_id: str, query: str = "") -> Reply:
    return call("GET", f"{SHARED}/{share_id}", query=query)  # no credentials


def test_a_link_shows_exactly_the_messages_up_to_its_creation_without_credentials() -> None:
    sid, base, token = _conversation("first", "second")
    share = _share(base, token)
    assert set(share) == {"share_id", "created_at", "expires_at", "message_count"}
    assert share["message_count"] == 2
    assert len(share["share_id"]) == 22  # 128 random bits, URL-safe
    created = datetime.fromisoformat(share["created_at"])
    assert datetime.fromisoformat(share["expires_at"]) - created <= timedelta(hours=168)
    call("POST", f"{base}/messages", token=token, body={"role": "user", "content": "after the link"})

    shared = _shared(share["share_id"])
    assert shared.status == 200, shared.body
    assert shared.headers["Cache-Control"] == "no-store"
    assert shared.headers["Referrer-Policy"] == "no-referrer"
    assert shared.body["title"] == "Trip plans"
    assert [(m["role"], m["content"]) for m in shared.body["items"]] == [
        ("user", "first"),
        ("user", "second"),
    ]
    assert set(shared.body["items"][0]) == {"role", "content", "created_at"}
    assert (shared.body["message_count"], shared.body["next_cursor"]) == (2, None)
    assert sid not in json.dumps(shared.body)  # no session id anywhere

    first_page = _shared(share["share_id"], "limit=1").body
    assert [m["content"] for m in first_page["items"]] == ["first"]
    rest = _shared(share["share_id"], f"limit=1&cursor={first_page['next_cursor']}").body
    assert [m["content"] for m in rest["items"]] == ["second"]
    assert rest["next_cursor"] is None
    assert_error(_shared(share["share_id"], "cursor=forged"), 400, "invalid_cursor")
    past = cursor.encode(f"shared:{share['share_id']}", {"p": "9" * 20})  # past the snapshot's end
    assert_error(_shared(share["share_id"], f"cursor={past}"), 400, "invalid_cursor")

    empty = _share(*_conversation()[1:])
    assert _shared(empty["share_id"]).body["items"] == []  # shared before any message: stays empty


def test_links_are_listed_revoked_at_once_and_unknown_ones_answer_alike() -> None:
    _, base, token = _conversation("hello")
    kept, revoked = _share(base, token), _share(base, token)
    assert kept["share_id"] != revoked["share_id"]
    listed = call("GET", f"{base}/shares", token=token).body
    assert [s["share_id"] for s in listed["items"]] == sorted([kept["share_id"], revoked["share_id"]])

    gone = call("DELETE", f"{base}/shares/{revoked['share_id']}", token=token)
    assert gone.status == 200, gone.body
    assert gone.body["share_id"] == revoked["share_id"]
    refused, unknown = _shared(revoked["share_id"]), _shared("A" * 22)
    assert_error(refused, 404, "share_not_found")
    assert_error(unknown, 404, "share_not_found")
    assert refused.body["error"]["message"] == unknown.body["error"]["message"]
    assert_error(_shared("not-a-share-id"), 404, "share_not_found")
    assert _shared(kept["share_id"]).status == 200
    assert [s["share_id"] for s in call("GET", f"{base}/shares", token=token).body["items"]] == [
        kept["share_id"]
    ]
    assert_error(call("DELETE", f"{base}/shares/{revoked['share_id']}", token=token), 404, "share_not_found")

    stranger = create(body={}).body["session_token"]
    for method, path in (("POST", f"{base}/shares"), ("GET", f"{base}/shares")):
        assert_error(call(method, path, token=stranger), 404, "session_not_found")
    assert_error(
        call("DELETE", f"{base}/shares/{kept['share_id']}", token=stranger), 404, "session_not_found"
    )
    assert _shared(kept["share_id"]).status == 200


def test_the_panic_button_and_an_operators_erase_revoke_every_link() -> None:
    sid, base, token = _conversation("secret")
    links = [_share(base, token)["share_id"] for _ in range(2)]
    assert call("DELETE", base, token=token).status == 200
    for share_id in links:
        assert_error(_shared(share_id), 404, "share_not_found")
    assert list(ChatItem.query(sid)) == []  # the links' items went with the conversation

    other_sid, other_base, other_token = _conversation("also secret")
    link = _share(other_base, other_token)["share_id"]
    assert erase_by_operator(other_sid, "data_subject_request") is not None
    assert_error(_shared(link), 404, "share_not_found")


def test_a_link_ends_at_its_own_expiry_at_the_conversations_and_with_a_shorter_retention(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("SHARE_HOURS", "5")
    start = clock.now()
    settings_env.setattr(clock, "now", lambda: start)
    _, base, token = _conversation("hi")
    link = _share(base, token)
    assert datetime.fromisoformat(link["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=5)
    settings_env.setattr(clock, "now", lambda: start + timedelta(hours=5, seconds=1))
    assert_error(_shared(link["share_id"]), 404, "share_not_found")
    assert call("GET", f"{base}/shares", token=token).body["items"] == []

    settings_env.setattr(clock, "now", lambda: start)
    _, base, token = _conversation("hi", body={"retention_hours": 2})
    short = _share(base, token)  # never beyond the conversation's retention
    assert datetime.fromisoformat(short["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=2)
    settings_env.setattr(clock, "now", lambda: start + timedelta(hours=3))
    conversation_keys.forget()
    assert_error(_shared(short["share_id"]), 404, "share_not_found")  # the conversation has expired

    settings_env.setattr(clock, "now", lambda: start)
    _, base, token = _conversation("hi")
    lowered = _share(base, token)
    settings_env.setattr(clock, "now", lambda: start + timedelta(minutes=30))
    assert call("PATCH", base, token=token, body={"retention_hours": 1}).status == 200
    [moved] = call("GET", f"{base}/shares", token=token).body["items"]
    assert datetime.fromisoformat(moved["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=1)
    settings_env.setattr(clock, "now", lambda: start + timedelta(hours=1, seconds=1))
    assert_error(_shared(lowered["share_id"]), 404, "share_not_found")


def test_allow_sharing_false_turns_every_share_route_off(settings_env: pytest.MonkeyPatch) -> None:
    _, base, token = _conversation("hi")
    link = _share(base, token)
    settings_env.setenv("ALLOW_SHARING", "false")
    get_settings.cache_clear()  # as a deploy with the parameter changed starts new functions
    for method, path, auth in (
        ("POST", f"{base}/shares", token),
        ("GET", f"{base}/shares", token),
        ("DELETE", f"{base}/shares/{link['share_id']}", token),
        ("GET", f"{SHARED}/{link['share_id']}", None),
    ):
        assert_error(call(method, path, token=auth), 404, "not_found")


def test_share_links_are_rate_limited_per_session(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("SHARE_LIMIT_PER_HOUR", "2")
    _, base, token = _conversation("hi")
    _share(base, token)
    _share(base, token)
    limited = call("POST", f"{base}/shares", token=token)
    assert_error(limited, 429, "rate_limited")
    assert len(call("GET", f"{base}/shares", token=token).body["items"]) == 2
