"""ModelId empty: no built-in model, the chat routes do not exist (404 `not_found`, as for any unknown
route, before the body is looked at); a team's own bot answers, told by the message events."""

from __future__ import annotations

import json

import boto3
import pytest

from chatvault.http.stream import PlainRequest, respond
from tests.helpers import call

pytestmark = pytest.mark.usefixtures("aws")


def table_items() -> list[dict[str, object]]:
    """Every item of every table: what a refused request must leave as it was."""
    ddb = boto3.client("dynamodb")
    return [item for name in ddb.list_tables()["TableNames"] for item in ddb.scan(TableName=name)["Items"]]


@pytest.fixture
def no_model(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("MODEL_ID", "")


def _session() -> tuple[str, str]:
    created = call("POST", "/api/v1/sessions")
    return created.body["session_id"], created.body["session_token"]


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("body", [{"content": "hello"}, {"content": ""}, {"nonsense": 1}])
def test_every_chat_route_is_404_and_changes_nothing(body: dict[str, object]) -> None:
    session_id, token = _session()
    before = table_items()
    for path in (
        f"/api/v1/sessions/{session_id}/chat",
        "/api/v1/chat",
        f"/api/v1/sessions/{session_id}/chat/stop",
    ):
        reply = call("POST", path, body=body, token=token)
        assert (reply.status, reply.body["error"]["code"]) == (404, "not_found"), path
    status, _, chunks = respond(
        PlainRequest(
            "POST",
            f"/api/v1/sessions/{session_id}/chat",
            headers={"x-session-token": token, "accept": "text/event-stream"},
            body=json.dumps(body).encode(),
        )
    )
    assert status == 404
    assert json.loads(b"".join(chunks))["error"]["code"] == "not_found"
    assert table_items() == before
    # the plain append still works: the bot's user writes that way
    appended = call(
        "POST", f"/api/v1/sessions/{session_id}/messages", body={"role": "user", "content": "hi"}, token=token
    )
    assert appended.status == 201


def test_with_a_model_the_same_request_is_answered() -> None:
    session_id, token = _session()
    reply = call("POST", f"/api/v1/sessions/{session_id}/chat", body={"content": "hello"}, token=token)
    assert reply.status == 201
