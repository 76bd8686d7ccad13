"""Retention per conversation (issue 24, part 2): `retention_hours` on create and PATCH, from 1 to
RetentionHours (a temporary conversation's, to TemporaryRetentionHours). A PATCH applies it at once:
the session expires that long after the request, each message and upload that long after it was
written (moved TTLs; what is older is deleted, an upload's file with it), and the read rule hides
what it passed even before the TTLs have moved. In-process, through the routes, with the clock moved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from chatvault.core import clock
from chatvault.core.errors import StorageUnavailableError
from chatvault.dal import conversation_keys, retention, uploads
from chatvault.dal.aws.items import ChatItem
from chatvault.dal.conversation_keys import KeyItem
from chatvault.http.api_document import api_document
from tests.helpers import assert_error, call, create, declare_upload, stored_upload

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


class Clock:
    def __init__(self, env: pytest.MonkeyPatch) -> None:
        self.env, self.start = env, clock.now()
        self.set(timedelta())

    def set(self, after: timedelta) -> datetime:
        moment = self.start + after
        self.env.setattr(clock, "now", lambda: moment)
        return moment


def _say(base: str, token: str, content: str) -> None:
    reply = call("POST", f"{base}/messages", token=token, body={"role": "user", "content": content})
    assert reply.status == 201, reply.body


def _contents(base: str, token: str) -> list[str]:
    reply = call("GET", f"{base}/messages", token=token)
    assert reply.status == 200, reply.body
    return [m["content"] for m in reply.body["items"]]


def _items(sid: str) -> dict[str, Any]:
    """The session's raw items by sort key (every kind)."""
    return {item.sk: item for item in ChatItem.query(sid)}


def test_a_new_conversation_may_ask_for_a_shorter_retention_never_a_longer_one(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("RETENTION_HOURS", "48")
    settings_env.setenv("TEMPORARY_RETENTION_HOURS", "6")
    moments = Clock(settings_env)
    short = create(body={"retention_hours": 3}).body
    default = create(body={}).body
    temporary = create(body={"temporary": True}).body
    shorter_temporary = create(body={"temporary": True, "retention_hours": 2}).body
    assert (short["retention_hours"], default["retention_hours"]) == (3, 48)
    assert (temporary["retention_hours"], shorter_temporary["retention_hours"]) == (6, 2)
    assert _at(short["expires_at"]) == _whole(moments.start) + timedelta(hours=3)
    assert _at(shorter_temporary["expires_at"]) == _whole(moments.start) + timedelta(hours=2)
    got = call("GET", f"{SESSIONS}/{short['session_id']}", token=short["session_token"])
    assert got.body["retention_hours"] == 3

    before = len(list(ChatItem.scan()))
    for body in (
        {"retention_hours": 49},
        {"retention_hours": 0},
        {"retention_hours": "3"},
        {"retention_hours": 2.5},
        {"retention_hours": None},
    ):
        reply = call("POST", SESSIONS, body=body)
        assert_error(reply, 422, "validation_failed")
        # one detail, at the field (an explicit null breaks the body's rule: "leave it out")
        field = "body" if body["retention_hours"] is None else "body.retention_hours"
        assert [d["field"] for d in reply.body["error"]["details"]] == [field], body
    assert len(list(ChatItem.scan())) == before  # nothing written
    lowered = create(
        body={"temporary": True, "retention_hours": 7}
    ).body  # never longer than a temporary one's
    assert lowered["retention_hours"] == 6
    api_document.cache_clear()  # one document per process: this test's settings are not the others'
    try:
        served = call("GET", "/api/v1/openapi.json").body["components"]["schemas"]
    finally:
        api_document.cache_clear()
    assert served["CreateSessionRequest"]["properties"]["retention_hours"]["maximum"] == 48
    assert served["UpdateSessionRequest"]["properties"]["retention_hours"]["maximum"] == 48


def test_a_lowered_retention_applies_at_once_to_the_session_its_messages_and_uploads(
    settings_env: pytest.MonkeyPatch,
) -> None:
    moments = Clock(settings_env)
    session = create(body={"title": "kept a while"}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"{SESSIONS}/{sid}"
    _say(base, token, "first")
    moments.set(timedelta(hours=1))
    old_upload = stored_upload(sid, token)
    moments.set(timedelta(hours=2))
    _say(base, token, "second")
    moments.set(timedelta(hours=4))
    _say(base, token, "third")
    new_upload = stored_upload(sid, token)

    now = moments.set(timedelta(hours=5))
    patched = call("PATCH", base, token=token, body={"retention_hours": 3})
    assert patched.status == 200, patched.body
    assert patched.body["retention_hours"] == 3
    assert _at(patched.body["expires_at"]) == _whole(now) + timedelta(hours=3)
    assert _contents(base, token) == ["third"]  # "second" turned 3 hours old as the PATCH came
    listed = call("GET", f"{base}/uploads", token=token).body["items"]
    assert [u["upload_id"] for u in listed] == [new_upload]
    assert_error(call("GET", f"{base}/uploads/{old_upload}", token=token), 404, "upload_not_found")

    stored = _items(sid)  # on disk: what the new retention passed is gone, the rest moved
    kinds = sorted(item.sk[:2] for item in stored.values())
    assert kinds == ["!P", "#S", "M#", "U#"]
    [third] = [item for item in stored.values() if item.sk.startswith("M#")]
    assert third.expires_at == _whole(moments.start + timedelta(hours=4) + timedelta(hours=3))
    assert [o.key for o in uploads.objects(f"uploads/{sid}/")] == [uploads.key_for(sid, new_upload)]
    key_item = KeyItem.get(sid)
    assert int(key_item.retention_hours) == 3  # held with the key, for the next cold writer
    assert key_item.expires_at == _whole(now) + timedelta(hours=3)

    moments.set(timedelta(hours=7, seconds=1))  # "third" is 3 hours old; the session lives on
    conversation_keys.forget()
    assert _contents(base, token) == []
    assert call("GET", base, token=token).status == 200
    moments.set(timedelta(hours=8, seconds=1))
    conversation_keys.forget()
    assert_error(call("GET", base, token=token), 404, "session_not_found")


def test_an_uploads_record_is_kept_for_its_conversations_retention_whoever_holds_which(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """A new upload's record expires the conversation's retention after it was issued (its TTL's removal
    is what removes its file), whether this process holds that retention with the key, holds none, or
    holds an old one that a PATCH elsewhere changed (the refused write is sent again with the new one)."""
    moments = Clock(settings_env)
    session = create(body={"retention_hours": 5}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"{SESSIONS}/{sid}"
    default = create().body

    def record_expiry(session_path: str, sid: str, token: str) -> timedelta:
        issued = declare_upload(session_path, "a.txt", "text/plain", 5, token=token)
        assert issued.status == 201, issued.body
        item = _items(sid)["U#" + issued.body["upload_id"]]
        return item.expires_at - _whole(moments.start)

    assert record_expiry(base, sid, token) == timedelta(hours=5)  # held by this process since the create
    conversation_keys.forget()
    assert record_expiry(base, sid, token) == timedelta(hours=5)  # none held: read from the refusal
    assert record_expiry(
        f"{SESSIONS}/{default['session_id']}", default["session_id"], default["session_token"]
    ) == (timedelta(hours=720))
    assert call("PATCH", base, token=token, body={"retention_hours": 2}).status == 200
    conversation_keys.remember(
        sid, conversation_keys.cached(sid, clock.now()), clock.now() + timedelta(hours=5), 5
    )
    assert record_expiry(base, sid, token) == timedelta(hours=2)  # an old one held: refused, then the new


def test_the_read_rule_hides_what_the_retention_passed_while_ttls_have_not_moved(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """The PATCH's pass fails (storage down after its write): it answers 503, and still no read, nor
    the model's context, shows what the new retention passed; the same PATCH again finishes it."""
    moments = Clock(settings_env)
    session = create(body={}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"{SESSIONS}/{sid}"
    _say(base, token, "long ago")
    moments.set(timedelta(hours=4))
    _say(base, token, "lately")
    moments.set(timedelta(hours=5))

    def down(*_: Any, **__: Any) -> Any:
        raise StorageUnavailableError()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retention, "apply", down)
        failed = call("PATCH", base, token=token, body={"retention_hours": 3})
    assert_error(failed, 503, "service_unavailable")
    assert len([sk for sk in _items(sid) if sk.startswith("M#")]) == 2  # nothing deleted yet
    assert _contents(base, token) == ["lately"]
    exported = call("GET", f"{base}/export", token=token)
    assert [m["content"] for m in exported.body["messages"]] == ["lately"]
    chat = call("POST", f"{base}/chat", token=token, body={"content": "What did I say?"})
    assert chat.status == 201, chat.body
    assert chat.body["reply"]["content"] == 'You said: "What did I say?". Earlier you said: "lately"'

    again = call("PATCH", base, token=token, body={"retention_hours": 3})
    assert again.status == 200, again.body
    assert len([sk for sk in _items(sid) if sk.startswith("M#")]) == 3  # "lately", the question, the reply


def test_a_longer_retention_moves_ttls_forward_but_never_brings_back_expired_data(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("RETENTION_HOURS", "10")
    moments = Clock(settings_env)
    session = create(body={"retention_hours": 2}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"{SESSIONS}/{sid}"
    _say(base, token, "early")
    moments.set(timedelta(hours=1))
    _say(base, token, "later")
    moments.set(timedelta(hours=2, seconds=30))  # "early" expired; "later" has an hour left
    assert call("PATCH", base, token=token, body={"retention_hours": 8}).status == 200
    assert _contents(base, token) == ["later"]
    [later] = [i for i in _items(sid).values() if i.sk.startswith("M#") and i.expires_at > clock.now()]
    assert later.expires_at == _whole(moments.start + timedelta(hours=9))
    conversation_keys.forget()  # a cold function learns the new retention with the key
    moments.set(timedelta(hours=3))
    _say(base, token, "newest")
    [newest] = [i for i in _items(sid).values() if getattr(i, "created_at", None) == clock.now()]
    assert newest.expires_at == _whole(clock.now() + timedelta(hours=8))
    assert _at(call("GET", base, token=token).body["expires_at"]) == _whole(clock.now()) + timedelta(hours=8)


def test_retention_changes_are_rate_limited_for_the_sessions_own_caller_only(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """Each change moves every message's TTL: RETENTION_CHANGE_LIMIT_PER_HOUR a session an hour, and a
    stranger's refused attempts use none of it."""
    settings_env.setenv("RETENTION_CHANGE_LIMIT_PER_HOUR", "2")
    Clock(settings_env)
    session = create(body={}).body
    base, token = f"{SESSIONS}/{session['session_id']}", session["session_token"]
    stranger = create(body={}).body["session_token"]
    for _ in range(3):
        assert_error(
            call("PATCH", base, token=stranger, body={"retention_hours": 5}), 404, "session_not_found"
        )
    for hours in (5, 6):
        assert call("PATCH", base, token=token, body={"retention_hours": hours}).status == 200
    limited = call("PATCH", base, token=token, body={"retention_hours": 7})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert call("GET", base, token=token).body["retention_hours"] == 6
    assert call("PATCH", base, token=token, body={"title": "still renamable"}).status == 200


def test_patch_refuses_a_retention_beyond_the_deployments_and_lowers_a_temporary_ones(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("RETENTION_HOURS", "48")
    settings_env.setenv("TEMPORARY_RETENTION_HOURS", "6")
    Clock(settings_env)
    kept = create(body={}).body
    temporary = create(body={"temporary": True}).body
    for session, body in (
        (kept, {"retention_hours": 49}),
        (kept, {"retention_hours": 0}),
        (kept, {"retention_hours": None}),
        (kept, {"retention_hours": True}),
        (temporary, {"retention_hours": 49}),
    ):
        base = f"{SESSIONS}/{session['session_id']}"
        before = call("GET", base, token=session["session_token"]).body
        reply = call("PATCH", base, token=session["session_token"], body=body)
        assert_error(reply, 422, "validation_failed")
        assert call("GET", base, token=session["session_token"]).body == before
    temporary_path = f"{SESSIONS}/{temporary['session_id']}"
    shorter = call("PATCH", temporary_path, token=temporary["session_token"], body={"retention_hours": 1})
    assert shorter.status == 200, shorter.body
    assert (shorter.body["retention_hours"], shorter.body["temporary"]) == (1, True)
    longer = call(
        "PATCH", temporary_path, token=temporary["session_token"], body={"retention_hours": 7, "title": "t"}
    )
    assert longer.status == 200, longer.body  # lowered to TemporaryRetentionHours, not refused
    assert (longer.body["retention_hours"], longer.body["title"]) == (6, "t")
