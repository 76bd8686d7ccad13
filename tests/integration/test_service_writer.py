"""The bot's side: ClientRoles limits what end users' credentials may append; the service writer
(IAM, /api/v1/service/...) reads sessions and appends any role, with the public routes' validation,
idempotency, ordering and limits, in one DynamoDB round trip per append."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import botocore.client
import pytest

from tests.helpers import REAL_API_CALL, assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")

SERVICE = "/api/v1/service/sessions"


@pytest.fixture
def requests_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    sent: list[str] = []

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        sent.append(operation)
        return REAL_API_CALL(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", api_call)
    return sent


def _session() -> tuple[str, str]:
    body = create(body={}).body
    return body["session_id"], body["session_token"]


def _history(sid: str) -> list[tuple[str, str]]:
    reply = call("GET", f"{SERVICE}/{sid}/messages", service=True)
    assert reply.status == 200, reply.body
    return [(m["role"], m["content"]) for m in reply.body["items"]]


@pytest.mark.parametrize("role", ["assistant", "system", "tool"])
def test_an_end_user_token_may_not_write_the_bots_roles(role: str) -> None:
    sid, token = _session()
    reply = call("POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": role, "content": "x"})
    assert_error(reply, 403, "role_not_allowed")
    assert _history(sid) == []
    assert call("GET", f"{SERVICE}/{sid}", service=True).body["message_count"] == 0


def test_client_roles_widens_what_end_users_may_write(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("CLIENT_ROLES", "user,assistant")
    sid, token = _session()
    path = f"/api/v1/sessions/{sid}/messages"
    assert call("POST", path, token=token, body={"role": "assistant", "content": "a"}).status == 201
    assert_error(
        call("POST", path, token=token, body={"role": "system", "content": "s"}), 403, "role_not_allowed"
    )


def test_the_service_writer_appends_any_role_in_order_with_the_public_answers() -> None:
    sid, token = _session()
    assert (
        call(
            "POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": "hi"}
        ).status
        == 201
    )
    mid = str(uuid.uuid4())
    reply = call(
        "POST",
        f"{SERVICE}/{sid}/messages",
        service=True,
        body={"role": "assistant", "content": "hello", "message_id": mid, "metadata": {"model": "stand-in"}},
    )
    assert reply.status == 201, reply.body
    assert reply.body["role"] == "assistant"
    assert reply.body["message_id"] == mid
    assert (
        call("POST", f"{SERVICE}/{sid}/messages", service=True, body={"role": "tool", "content": "t"}).status
        == 201
    )
    assert _history(sid) == [("user", "hi"), ("assistant", "hello"), ("tool", "t")]
    # the same idempotency as the public route
    again = call(
        "POST",
        f"{SERVICE}/{sid}/messages",
        service=True,
        body={"role": "assistant", "content": "hello", "message_id": mid, "metadata": {"model": "stand-in"}},
    )
    assert again.status == 200
    assert again.body == reply.body
    conflict = call(
        "POST",
        f"{SERVICE}/{sid}/messages",
        service=True,
        body={"role": "assistant", "content": "other", "message_id": mid},
    )
    assert_error(conflict, 409, "message_id_conflict")
    # the user sees the bot's reply through their token
    public = call("GET", f"/api/v1/sessions/{sid}/messages", token=token).body["items"]
    assert [m["content"] for m in public] == ["hi", "hello", "t"]
    session = call("GET", f"{SERVICE}/{sid}", service=True)
    assert session.status == 200
    assert session.body["message_count"] == 3
    assert "session_token" not in session.body


def test_the_service_writer_gets_the_same_validation_and_refusals() -> None:
    sid, token = _session()
    path = f"{SERVICE}/{sid}/messages"
    assert_error(
        call("POST", path, service=True, body={"role": "wizard", "content": "x"}), 422, "validation_failed"
    )
    assert_error(
        call("POST", path, service=True, body={"role": "assistant", "content": ""}), 422, "validation_failed"
    )
    assert_error(call("POST", path, service=True, raw_body="{nope"), 400, "invalid_json")
    assert_error(
        call(
            "POST",
            f"{SERVICE}/{uuid.uuid4()}/messages",
            service=True,
            body={"role": "assistant", "content": "x"},
        ),
        404,
        "session_not_found",
    )
    assert_error(call("GET", f"{SERVICE}/not-a-uuid", service=True), 404, "session_not_found")
    assert call("PATCH", f"/api/v1/sessions/{sid}", token=token, body={"status": "ended"}).status == 200
    assert_error(
        call("POST", path, service=True, body={"role": "assistant", "content": "x"}), 409, "session_ended"
    )
    assert call("DELETE", f"/api/v1/sessions/{sid}", token=token).status == 200
    assert_error(call("GET", f"{SERVICE}/{sid}", service=True), 404, "session_not_found")
    assert_error(call("GET", path, service=True), 404, "session_not_found")


def test_a_service_route_reached_without_iam_authorization_is_refused() -> None:
    """Defence in depth: API Gateway only invokes these routes after its IAM check; an event without
    the IAM principal (a misconfigured route) is refused, never served as a privileged caller."""
    sid, token = _session()
    assert_error(call("GET", f"{SERVICE}/{sid}", token=token), 403, "forbidden")
    reply = call("POST", f"{SERVICE}/{sid}/messages", token=token, body={"role": "assistant", "content": "x"})
    assert_error(reply, 403, "forbidden")
    assert _history(sid) == []


def test_a_service_append_is_one_round_trip(requests_sent: list[str]) -> None:
    sid, _ = _session()
    requests_sent.clear()
    reply = call(
        "POST", f"{SERVICE}/{sid}/messages", service=True, body={"role": "assistant", "content": "x"}
    )
    assert reply.status == 201
    assert requests_sent == ["TransactWriteItems"]


def test_a_service_reply_to_a_signed_in_users_session_moves_it_up_their_list(jwt_mode: None) -> None:
    older = create(subject="alice", body={"title": "older"}).body["session_id"]
    create(subject="alice", body={"title": "newer"})
    assert (
        call(
            "POST", f"{SERVICE}/{older}/messages", service=True, body={"role": "assistant", "content": "x"}
        ).status
        == 201
    )
    listed = call("GET", "/api/v1/sessions", subject="alice").body["items"]
    assert [s["title"] for s in listed] == ["older", "newer"]
