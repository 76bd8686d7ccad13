"""The session endpoints through their real handlers, under moto (anonymous mode)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from tests.helpers import append_messages, assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"


def test_create_returns_session_and_a_token_once() -> None:
    reply = create(body={"title": "Helpline", "metadata": {"channel": "web"}})

    session = reply.body
    assert uuid.UUID(session["session_id"]).version == 4
    assert session["title"] == "Helpline"
    assert session["metadata"] == {"channel": "web"}
    assert session["status"] == "active"
    assert session["message_count"] == 0
    assert session["last_message_at"] is None
    assert session["preview"] is None
    assert session["created_at"].endswith("Z")
    assert len(session["created_at"]) == 24
    assert len(session["session_token"]) >= 43  # 32 random bytes, base64url
    assert reply.headers["Cache-Control"] == "no-store"

    again = call("GET", f"{SESSIONS}/{session['session_id']}", token=session["session_token"])
    assert again.status == 200
    assert "session_token" not in again.body
    assert again.body["title"] == "Helpline"


def test_create_without_body_uses_defaults() -> None:
    reply = call("POST", SESSIONS)
    assert reply.status == 201
    assert reply.body["title"] is None
    assert reply.body["metadata"] == {}


def test_only_the_token_hash_is_stored() -> None:
    session = create().body
    items = boto3.client("dynamodb").scan(TableName="chatvault-local-SessionsTable")["Items"]
    dump = json.dumps(items)
    assert session["session_token"] not in dump
    assert any("token_hash" in item for item in items)


def test_get_without_token_is_401_and_with_wrong_token_404() -> None:
    sid = create().body["session_id"]
    assert_error(call("GET", f"{SESSIONS}/{sid}"), 401, "token_required")
    assert_error(call("GET", f"{SESSIONS}/{sid}", token="not-the-token"), 404, "session_not_found")
    # the same answer as for a session that does not exist
    assert_error(call("GET", f"{SESSIONS}/{uuid.uuid4()}", token="x"), 404, "session_not_found")


def test_patch_title_and_metadata_is_visible_on_get() -> None:
    s = create(body={"title": "old", "metadata": {"a": "1"}}).body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]

    reply = call("PATCH", path, token=token, body={"title": "new", "metadata": {"b": "2"}})

    assert reply.status == 200
    assert reply.body["title"] == "new"
    assert reply.body["metadata"] == {"b": "2"}
    assert reply.body["updated_at"] >= s["updated_at"]
    got = call("GET", path, token=token).body
    assert got["title"] == "new"
    assert got["metadata"] == {"b": "2"}


def test_patch_null_title_clears_it() -> None:
    s = create(body={"title": "old"}).body
    reply = call("PATCH", f"{SESSIONS}/{s['session_id']}", token=s["session_token"], body={"title": None})
    assert reply.status == 200
    assert reply.body["title"] is None


def test_ended_is_one_way_and_read_only() -> None:
    s = create(body={"title": "t"}).body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]

    assert call("PATCH", path, token=token, body={"status": "ended"}).body["status"] == "ended"

    assert_error(call("PATCH", path, token=token, body={"title": "again"}), 409, "session_ended")
    assert_error(call("PATCH", path, token=token, body={"status": "active"}), 422, "validation_failed")
    again = call("PATCH", path, token=token, body={"status": "ended"})
    assert again.status == 200
    assert again.body["status"] == "ended"
    got = call("GET", path, token=token).body
    assert got["status"] == "ended"
    assert got["title"] == "t"


def test_patch_needs_the_right_token() -> None:
    s = create(body={"title": "mine"}).body
    path = f"{SESSIONS}/{s['session_id']}"
    assert_error(call("PATCH", path, body={"title": "x"}), 401, "token_required")
    assert_error(call("PATCH", path, token="wrong", body={"title": "x"}), 404, "session_not_found")
    assert call("GET", path, token=s["session_token"]).body["title"] == "mine"


def test_delete_returns_a_receipt_then_everything_is_404() -> None:
    s = create().body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]

    reply = call("DELETE", path, token=token)

    assert reply.status == 200
    assert reply.body["session_id"] == s["session_id"]
    assert reply.body["erased"] == {"messages": 0, "uploads": 0}
    assert reply.body["deleted_at"].endswith("Z")
    assert_error(call("GET", path, token=token), 404, "session_not_found")
    assert_error(call("DELETE", path, token=token), 404, "session_not_found")
    assert_error(call("PATCH", path, token=token, body={"title": "x"}), 404, "session_not_found")


def test_delete_with_wrong_token_erases_nothing() -> None:
    s = create().body
    path = f"{SESSIONS}/{s['session_id']}"
    assert_error(call("DELETE", path, token="wrong"), 404, "session_not_found")
    assert_error(call("DELETE", path), 401, "token_required")
    assert call("GET", path, token=s["session_token"]).status == 200


def test_delete_erases_every_item_of_the_session() -> None:
    s = create().body
    sid = s["session_id"]
    ddb = boto3.client("dynamodb")
    table = "chatvault-local-SessionsTable"
    for i in range(60):  # message items and markers, as the messages feature writes them
        ddb.put_item(
            TableName=table, Item={"pk": {"S": sid}, "sk": {"S": f"M#{i:020d}"}, "content": {"S": "hi"}}
        )
        ddb.put_item(TableName=table, Item={"pk": {"S": sid}, "sk": {"S": f"!I#{uuid.uuid4()}"}})
    other = create().body

    assert call("DELETE", f"{SESSIONS}/{sid}", token=s["session_token"]).status == 200

    remaining = ddb.scan(TableName=table)["Items"]
    assert not [item for item in remaining if item["pk"]["S"] == sid]
    assert {item["pk"]["S"] for item in remaining} == {other["session_id"]}


def test_concurrent_deletes_answer_a_receipt_or_404_and_erase_everything(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """The panic button tapped four times at once (it once answered [500, 200, 500, 500])."""
    settings_env.setenv("APPEND_LIMIT_PER_MINUTE", "0")
    s = create().body
    sid = s["session_id"]
    append_messages(s, 150)
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(
            pool.map(lambda _: call("DELETE", f"{SESSIONS}/{sid}", token=s["session_token"]), range(4))
        )
    assert sorted({r.status for r in replies}) in ([200], [200, 404]), [r.body for r in replies]
    for reply in replies:
        if reply.status == 200:
            assert reply.body["erased"]["messages"] == 150
        else:
            assert_error(reply, 404, "session_not_found")
    remaining = boto3.client("dynamodb").scan(TableName="chatvault-local-SessionsTable")["Items"]
    assert not [item for item in remaining if item["pk"]["S"] == sid]


def test_client_chosen_id_is_201_then_409() -> None:
    sid = str(uuid.uuid4())
    first = call("POST", SESSIONS, body={"session_id": sid})
    assert first.status == 201
    assert first.body["session_id"] == sid

    assert_error(call("POST", SESSIONS, body={"session_id": sid}), 409, "session_exists")
    # the first session is untouched
    assert call("GET", f"{SESSIONS}/{sid}", token=first.body["session_token"]).status == 200


def test_client_chosen_id_must_be_uuid4() -> None:
    assert_error(call("POST", SESSIONS, body={"session_id": "abc"}), 422, "validation_failed")
    uuid1 = str(uuid.uuid1())
    assert_error(call("POST", SESSIONS, body={"session_id": uuid1}), 422, "validation_failed")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_non_uuid_path_id_is_404(method: str) -> None:
    reply = call(
        method, f"{SESSIONS}/not-a-uuid", token="t", body={"title": "x"} if method == "PATCH" else None
    )
    assert_error(reply, 404, "session_not_found")


def test_uppercase_path_id_names_the_same_session() -> None:
    s = create().body
    reply = call("GET", f"{SESSIONS}/{s['session_id'].upper()}", token=s["session_token"])
    assert reply.status == 200
    assert reply.body["session_id"] == s["session_id"]


def test_malformed_json_is_400() -> None:
    reply = call("POST", SESSIONS, raw_body='{"title": ')
    assert_error(reply, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "colour": "red"}, "body.colour"),
        ({"title": "x" * 201}, "body.title"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "body.metadata"),
        ({"metadata": {"k" * 65: "v"}}, "body.metadata"),
        ({"metadata": {"k": "v" * 513}}, "body.metadata"),
        ({"metadata": {"k": 1}}, "body.metadata"),
        ({"title": 5}, "body.title"),
    ],
)
def test_invalid_create_bodies_are_422_with_details(body: dict[str, object], field: str) -> None:
    reply = call("POST", SESSIONS, body=body)
    assert_error(reply, 422, "validation_failed")
    assert any(d["field"].startswith(field) for d in reply.body["error"]["details"]), reply.body
    assert all(d["problem"] for d in reply.body["error"]["details"])


def test_limits_are_inclusive() -> None:
    body = {"title": "x" * 200, "metadata": {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}}
    assert call("POST", SESSIONS, body=body).status == 201


def test_invalid_patch_changes_nothing() -> None:
    s = create(body={"title": "keep"}).body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]
    assert_error(call("PATCH", path, token=token, body={"title": "x" * 201}), 422, "validation_failed")
    assert_error(call("PATCH", path, token=token, body={}), 422, "validation_failed")
    assert_error(call("PATCH", path, token=token, body={"metadata": None}), 422, "validation_failed")
    assert_error(call("PATCH", path, token=token, raw_body="[1,"), 400, "invalid_json")
    assert call("GET", path, token=token).body["title"] == "keep"


def test_body_over_the_limit_is_413_and_creates_nothing() -> None:
    reply = call("POST", SESSIONS, raw_body=json.dumps({"title": "x" * get_settings().max_body_bytes}))
    assert_error(reply, 413, "payload_too_large")
    assert boto3.client("dynamodb").scan(TableName="chatvault-local-SessionsTable")["Count"] == 0


def test_expired_session_reads_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    s = create(body={"title": "short-lived"}).body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]
    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)

    # DynamoDB's TTL has not removed the item (moto never does); reads must not show it anyway
    assert_error(call("GET", path, token=token), 404, "session_not_found")
    assert_error(call("PATCH", path, token=token, body={"title": "x"}), 404, "session_not_found")


def test_delete_of_an_expired_session_erases_what_ttl_has_not_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    path = f"{SESSIONS}/{sid}"
    assert call("POST", f"{path}/messages", token=token, body={"role": "user", "content": "hi"}).status == 201
    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)

    assert_error(call("DELETE", path, token="wrong"), 404, "session_not_found")  # still owner-only
    reply = call("DELETE", path, token=token)

    assert reply.status == 200
    assert reply.body["erased"] == {"messages": 1, "uploads": 0}
    items = boto3.client("dynamodb").scan(TableName="chatvault-local-SessionsTable")["Items"]
    assert not [item for item in items if item["pk"]["S"] == sid]  # not left to TTL
    assert_error(call("DELETE", path, token=token), 404, "session_not_found")


def test_an_expired_id_can_be_chosen_again(monkeypatch: pytest.MonkeyPatch) -> None:
    sid = str(uuid.uuid4())
    create(body={"session_id": sid})
    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)
    reply = call("POST", SESSIONS, body={"session_id": sid, "title": "fresh"})
    assert reply.status == 201
    assert reply.body["title"] == "fresh"


def test_patch_slides_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    s = create().body
    path, token = f"{SESSIONS}/{s['session_id']}", s["session_token"]
    later = clock.now() + timedelta(hours=700)
    monkeypatch.setattr(clock, "now", lambda: later)
    patched = call("PATCH", path, token=token, body={"title": "still here"}).body
    assert patched["expires_at"] > s["expires_at"]

    assert call("GET", path, token=token).body == patched  # the PATCH answered what a read returns

    even_later = later + timedelta(hours=100)  # past the original expiry, within the slid one
    monkeypatch.setattr(clock, "now", lambda: even_later)
    assert call("GET", path, token=token).status == 200


def test_list_is_404_in_anonymous_mode() -> None:
    assert_error(call("GET", SESSIONS), 404, "not_found")


def test_unknown_route_is_404_and_wrong_method_405() -> None:
    assert_error(call("GET", "/api/v1/nothing"), 404, "not_found")
    reply = call("PUT", f"{SESSIONS}/{uuid.uuid4()}")
    assert_error(reply, 405, "method_not_allowed")
    assert reply.headers["Allow"] == "DELETE, GET, PATCH"
    reply = call("PUT", SESSIONS)
    assert_error(reply, 405, "method_not_allowed")
    assert reply.headers["Allow"] == "DELETE, GET, POST"


def test_a_null_or_non_utf8_body_is_refused() -> None:
    assert_error(call("POST", SESSIONS, raw_body="null"), 422, "validation_failed")
    from functions.create_session.app import lambda_handler
    from tests.helpers import ROUTES, Gateway, context, match_route

    route, params = match_route(ROUTES, "POST", SESSIONS)  # type: ignore[misc]
    event = Gateway.event(
        "POST", SESSIONS, "", {"content-type": "application/json"}, b"\xff\xfe{", route, params, None
    )
    assert event["isBase64Encoded"] is True
    result = lambda_handler(event, context())
    assert result["statusCode"] == 400
    assert '"invalid_json"' in result["body"]
