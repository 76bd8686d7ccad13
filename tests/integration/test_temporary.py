"""Temporary conversations (issue 24, part 1): POST /sessions {"temporary": true} keeps a session
TemporaryRetentionHours after its last activity (never more than RetentionHours), never lists it and
never lets it be claimed. In-process, through the routes, with the clock moved past its expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chatvault.core import clock
from chatvault.dal import conversation_keys
from tests.helpers import assert_error, call, create
from tests.issuer import Issuer

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_temporary_conversation_slides_by_its_own_retention_and_is_gone_after_it(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("TEMPORARY_RETENTION_HOURS", "2")
    start = clock.now()
    settings_env.setattr(clock, "now", lambda: start)
    created = create(body={"title": "just this once", "temporary": True}).body
    kept = create(body={"title": "kept"}).body
    sid, token = created["session_id"], created["session_token"]
    base = f"{SESSIONS}/{sid}"
    assert created["temporary"] is True
    assert kept["temporary"] is False
    assert _at(created["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=2)
    assert _at(kept["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=720)

    later = start + timedelta(minutes=90)  # activity slides it by 2 hours, not by RetentionHours
    settings_env.setattr(clock, "now", lambda: later)
    conversation_keys.forget()  # another instance: the retention is read with the key
    message = call("POST", f"{base}/messages", token=token, body={"role": "user", "content": "hi"})
    assert message.status == 201, message.body
    after_append = call("GET", base, token=token).body
    assert _at(after_append["expires_at"]) == later.replace(microsecond=0) + timedelta(hours=2)
    assert after_append["message_count"] == 1
    renamed = call("PATCH", base, token=token, body={"title": "still temporary"})
    assert renamed.status == 200, renamed.body
    assert renamed.body["temporary"] is True
    expires = _at(renamed.body["expires_at"])
    assert expires == later.replace(microsecond=0) + timedelta(hours=2)
    assert call("GET", base, token=token).body["temporary"] is True

    gone = expires + timedelta(seconds=1)
    settings_env.setattr(clock, "now", lambda: gone)
    conversation_keys.forget()
    assert conversation_keys.read(sid, gone) is None  # its key is past its TTL too
    for path in (base, f"{base}/messages"):
        assert_error(call("GET", path, token=token), 404, "session_not_found")
    assert call("GET", f"{SESSIONS}/{kept['session_id']}", token=kept["session_token"]).status == 200


def test_temporary_retention_never_exceeds_the_deployments(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("RETENTION_HOURS", "1")
    settings_env.setenv("TEMPORARY_RETENTION_HOURS", "24")
    start = clock.now()
    settings_env.setattr(clock, "now", lambda: start)
    created = create(body={"temporary": True}).body
    assert _at(created["expires_at"]) == start.replace(microsecond=0) + timedelta(hours=1)


def test_temporary_must_be_a_boolean() -> None:
    for wrong in ("true", 1, None, {"on": True}):
        reply = call("POST", SESSIONS, body={"temporary": wrong})
        assert_error(reply, 422, "validation_failed")


def test_a_temporary_conversation_is_never_listed(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("AUTH_MODE", "jwt")
    kept = create(subject="alice", body={"title": "kept"}).body
    temporary = create(subject="alice", body={"title": "temporary", "temporary": True}).body
    assert temporary["session_token"] is None
    listed = call("GET", SESSIONS, subject="alice").body["items"]
    assert [s["session_id"] for s in listed] == [kept["session_id"]]
    base = f"{SESSIONS}/{temporary['session_id']}"
    said = call("POST", f"{base}/messages", subject="alice", body={"role": "user", "content": "x"})
    assert said.status == 201
    assert [s["session_id"] for s in call("GET", SESSIONS, subject="alice").body["items"]] == [
        kept["session_id"]
    ]  # its activity does not list it either
    assert call("GET", base, subject="alice").body["title"] == "temporary"  # its owner still reads it


def test_a_temporary_conversation_cannot_be_claimed(both_mode: Issuer) -> None:
    created = create(body={"title": "temporary", "temporary": True}).body
    sid, token = created["session_id"], created["session_token"]
    claimed = call("POST", f"{SESSIONS}/{sid}/claim", token=token, headers=both_mode.bearer("alice"))
    assert_error(claimed, 409, "session_temporary")
    assert call("GET", f"{SESSIONS}/{sid}", token=token).status == 200  # still the token's
    assert call("GET", SESSIONS, headers=both_mode.bearer("alice")).body["items"] == []
    # a wrong token learns nothing: 404 as for any session
    wrong = call("POST", f"{SESSIONS}/{sid}/claim", token="x" * 43, headers=both_mode.bearer("alice"))
    assert_error(wrong, 404, "session_not_found")
