"""The audit trail and the per-client abuse limits, through the handlers under moto."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock
from chatvault.dal import audit
from tests.helpers import append_messages, assert_error, call, create, declare_upload

pytestmark = pytest.mark.usefixtures("aws")
SECRET = "my husband reads my phone"


def _events(session_id: str) -> list[str]:
    return [entry.event for entry in audit.trail(session_id)]


def test_the_trail_records_the_lifecycle_and_survives_the_delete() -> None:
    s = create(body={"title": "t"}).body
    sid, token = s["session_id"], s["session_token"]
    base = f"/api/v1/sessions/{sid}"
    call("POST", f"{base}/messages", token=token, body={"role": "user", "content": SECRET})
    declare_upload(base, "bruise.jpg", "image/jpeg", 9, token=token)
    call("PATCH", base, token=token, body={"title": "renamed"})  # not a lifecycle event
    call("PATCH", base, token=token, body={"status": "ended"})
    boto3.client("s3").put_object(Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{sid}/x", Body=b"x")
    call("DELETE", base, token=token)

    trail = audit.trail(sid)

    assert [e.event for e in trail] == [
        "session_created",
        "upload_issued",
        "session_ended",
        "session_deleted",
    ]
    assert trail[-1].details == {"messages": 1, "uploads": 1}
    assert all(e.actor for e in trail)


def test_the_audit_table_holds_no_content_names_tokens_ips_or_session_ids() -> None:
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    call("POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": SECRET})
    declare_upload(f"/api/v1/sessions/{sid}", "bruise.jpg", "image/jpeg", 9, token=token)
    call("DELETE", f"/api/v1/sessions/{sid}", token=token)

    dump = json.dumps(boto3.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"])

    for secret in (SECRET, "bruise", token, "198.51.100.23", sid):
        assert secret not in dump
    assert len(_events(sid)) == 3


def test_creating_sessions_is_limited_per_client_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = clock.now().replace(second=5)  # the eleven creates in one window, whenever the test runs
    monkeypatch.setattr(clock, "now", lambda: moment)
    for _ in range(10):
        create(source_ip="203.0.113.5")

    refused = call("POST", "/api/v1/sessions", body={"title": "eleventh"}, source_ip="203.0.113.5")

    assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert create(source_ip="203.0.113.6").status == 201  # another client is not affected
    titles = [
        i.get("title", {}).get("S")
        for i in boto3.client("dynamodb").scan(TableName="chatvault-local-SessionsTable")["Items"]
    ]
    assert "eleventh" not in titles


def test_the_limit_resets_with_the_next_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    for _ in range(10):
        create(source_ip="203.0.113.7")
    assert_error(call("POST", "/api/v1/sessions", source_ip="203.0.113.7"), 429, "rate_limited")
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=61))
    assert create(source_ip="203.0.113.7").status == 201


def test_jwt_callers_are_limited_by_subject(jwt_mode: None, monkeypatch: pytest.MonkeyPatch) -> None:
    moment = clock.now().replace(second=5)  # the eleven creates in one window, whenever the test runs
    monkeypatch.setattr(clock, "now", lambda: moment)
    for i in range(10):
        create(subject="alice", source_ip=f"203.0.113.{i}")
    assert_error(
        call("POST", "/api/v1/sessions", subject="alice", source_ip="203.0.113.99"), 429, "rate_limited"
    )
    assert create(subject="bob", source_ip="203.0.113.1").status == 201


def test_issuing_uploads_is_limited_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    moment = clock.now().replace(second=5)  # the eleven uploads in one window, whenever the test runs
    monkeypatch.setattr(clock, "now", lambda: moment)
    s = create().body
    body = {"filename": "a.png", "content_type": "image/png", "size": 1}
    path = f"/api/v1/sessions/{s['session_id']}/uploads"
    for _ in range(10):
        assert call("POST", path, token=s["session_token"], body=body).status == 201
    refused = call("POST", path, token=s["session_token"], body=body)
    assert_error(refused, 429, "rate_limited")
    assert "Retry-After" in refused.headers
    item = boto3.client("dynamodb").get_item(
        TableName="chatvault-local-SessionsTable", Key={"pk": {"S": s["session_id"]}, "sk": {"S": "#S"}}
    )["Item"]
    assert item["uploads_issued"] == {"N": "10"}
    assert _events(s["session_id"]).count("upload_issued") == 10


def test_refusals_are_audited_under_the_client_fingerprint() -> None:
    for _ in range(11):
        call("POST", "/api/v1/sessions", source_ip="203.0.113.50")
    items = boto3.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"]
    refusals = [i for i in items if i["event"]["S"] == "rate_limited"]
    assert len(refusals) == 1
    assert refusals[0]["pk"]["S"].startswith("c#")
    assert refusals[0]["times"] == {"N": "1"}
    assert "203.0.113.50" not in json.dumps(items)


def test_a_taken_session_id_is_charged_and_audited_like_any_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client-chosen id answered 409 while it lives and 201 once it is gone must not be a free,
    unaudited oracle: every attempt counts against the create limit, and the 409 leaves a trace under
    the client's fingerprint that names neither the id nor the session's trail key."""
    import uuid

    moment = clock.now()
    monkeypatch.setattr(clock, "now", lambda: moment)
    sid = str(uuid.uuid4())
    assert create(body={"session_id": sid}, source_ip="203.0.113.60").status == 201
    for _ in range(9):
        taken = call("POST", "/api/v1/sessions", body={"session_id": sid}, source_ip="203.0.113.60")
        assert_error(taken, 409, "session_exists")
    # the limit (10 a minute) is used up: taken or free, an id is now answered alike
    for probe in (sid, str(uuid.uuid4())):
        refused = call("POST", "/api/v1/sessions", body={"session_id": probe}, source_ip="203.0.113.60")
        assert_error(refused, 429, "rate_limited")

    items = boto3.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"]
    (taken_trace,) = [i for i in items if i["event"]["S"] == "session_exists"]
    assert taken_trace["times"] == {"N": "9"}
    assert taken_trace["pk"]["S"] == "c#" + taken_trace["actor"]["S"]
    assert taken_trace["details"]["M"] == {"action": {"S": "create_session"}}
    assert sid not in json.dumps(items)
    assert _events(sid) == ["session_created"]  # the owner's trail holds no stranger's attempt


def test_refusals_are_one_audit_item_per_client_action_and_minute_with_their_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 creates in one minute from one client: 10 sessions and 30 refusals, which add one audit
    item (its count says 30), not 30 items kept for the audit retention. The next minute, a new item."""
    moment = clock.now().replace(second=5)
    monkeypatch.setattr(clock, "now", lambda: moment)
    statuses = [call("POST", "/api/v1/sessions", source_ip="203.0.113.70").status for _ in range(40)]
    assert statuses == [201] * 10 + [429] * 30

    def refusal_items() -> list[dict]:
        items = boto3.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"]
        return [i for i in items if i["pk"]["S"].startswith("c#")]

    (refusals,) = refusal_items()
    assert refusals["event"] == {"S": "rate_limited"}
    assert refusals["times"] == {"N": "30"}
    assert refusals["details"]["M"] == {"action": {"S": "create_session"}}

    later = moment + timedelta(minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    for _ in range(12):
        call("POST", "/api/v1/sessions", source_ip="203.0.113.70")
    assert sorted(int(i["times"]["N"]) for i in refusal_items()) == [2, 30]


def test_limits_are_settings(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("CREATE_LIMIT_PER_MINUTE", "2")
    moment = clock.now().replace(second=5)  # the three creates in one window
    settings_env.setattr(clock, "now", lambda: moment)
    create(source_ip="203.0.113.9")
    create(source_ip="203.0.113.9")
    assert_error(call("POST", "/api/v1/sessions", source_ip="203.0.113.9"), 429, "rate_limited")


def test_the_sweep_leaves_a_trace_for_each_folder(settings_env: pytest.MonkeyPatch) -> None:
    import uuid

    from chatvault.logic.sweep_orphans import sweep_orphans

    gone = str(uuid.uuid4())
    boto3.client("s3").put_object(Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{gone}/x", Body=b"x")
    later = clock.now() + timedelta(hours=1)
    settings_env.setattr(clock, "now", lambda: later)
    sweep_orphans(lambda: 10**9)
    (entry,) = audit.trail(gone)
    assert entry.event == "orphan_files_swept"
    assert entry.details == {"objects": 1}


def _message_count(sid: str, token: str) -> int:
    return int(call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"])


def test_appends_are_limited_per_session_and_a_refusal_writes_nothing(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """AppendRateLimit: a burst of N from an idle session, then one every 60/N s; 429 with Retry-After."""
    from chatvault.logic.rules import pace

    settings_env.setenv("APPEND_LIMIT_PER_MINUTE", "3")
    moment = clock.now()
    settings_env.setattr(clock, "now", lambda: moment)
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    path = f"/api/v1/sessions/{sid}/messages"
    accepted = "0b6f7d1e-9a39-4c8e-9c5a-7f1f3d0f4a11"
    for n in range(3):
        body = {"role": "user", "content": f"m{n}", **({"message_id": accepted} if n == 0 else {})}
        assert call("POST", path, token=token, body=body).status == 201
    for remembered in (True, False):  # whether or not this process remembers the session's pace
        if not remembered:
            pace._recent.clear()
        refused = call("POST", path, token=token, body={"role": "user", "content": "one too many"})
        assert_error(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] == "20"
    assert _message_count(sid, token) == 3
    # an idempotent retry of an accepted message is still answered from storage
    replay = call("POST", path, token=token, body={"role": "user", "content": "m0", "message_id": accepted})
    assert replay.status == 200
    # another session is not limited by this one
    other = create().body
    assert (
        call(
            "POST",
            f"/api/v1/sessions/{other['session_id']}/messages",
            token=other["session_token"],
            body={"role": "user", "content": "fine"},
        ).status
        == 201
    )
    # 20 s later, one more fits (60 s / 3)
    later = moment + timedelta(seconds=20)
    settings_env.setattr(clock, "now", lambda: later)
    assert call("POST", path, token=token, body={"role": "user", "content": "m3"}).status == 201
    assert_error(call("POST", path, token=token, body={"role": "user", "content": "m4"}), 429, "rate_limited")
    assert _message_count(sid, token) == 4


def test_the_append_limit_can_be_turned_off(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("APPEND_LIMIT_PER_MINUTE", "0")
    s = create().body
    append_messages(s, 5)
    item = boto3.client("dynamodb").get_item(
        TableName="chatvault-local-SessionsTable", Key={"pk": {"S": s["session_id"]}, "sk": {"S": "#S"}}
    )["Item"]
    assert "append_tat" not in item
