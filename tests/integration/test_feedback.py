"""Feedback on replies (issue 24, part 4): PUT .../messages/{message_id}/feedback rates an assistant
message, replacing what it had; DELETE removes it. The Message object carries it, the export includes
it, operators count "up" and "down" per model; the comment is content: sealed, never in a log or a
metric. In-process, through the routes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chatvault.core.observability import metrics
from chatvault.dal.aws.items import ChatItem
from tests.helpers import assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")

SESSIONS = "/api/v1/sessions"


def _exchange() -> tuple[str, str, dict[str, Any]]:
    """A session with one chat exchange: its path, token and the chat's answer."""
    session = create(body={}).body
    base, token = f"{SESSIONS}/{session['session_id']}", session["session_token"]
    chat = call("POST", f"{base}/chat", token=token, body={"content": "Hello"})
    assert chat.status == 201, chat.body
    return base, token, chat.body


def _feedback(base: str, token: str, message_id: str, body: Any = None, method: str = "PUT") -> Any:
    return call(method, f"{base}/messages/{message_id}/feedback", token=token, body=body)


def _emitted(out: str) -> list[dict[str, Any]]:
    """The EMF documents printed (the metrics)."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_feedback_round_trips_replaces_and_is_removed(capsys: pytest.CaptureFixture[str]) -> None:
    base, token, chat = _exchange()
    reply_id = chat["reply"]["message_id"]
    assert chat["reply"]["feedback"] is None

    marker = f"comment-{uuid.uuid4().hex}"
    metrics.clear_metrics()
    capsys.readouterr()
    rated = _feedback(base, token, reply_id, {"rating": "up", "comment": f"Clear answer {marker}"})
    assert rated.status == 200, rated.body
    assert rated.body["message_id"] == reply_id
    assert rated.body["content"] == chat["reply"]["content"]
    assert rated.body["feedback"]["rating"] == "up"
    assert rated.body["feedback"]["comment"] == f"Clear answer {marker}"
    out = capsys.readouterr().out
    assert marker not in out  # neither in a log line nor in a metric
    counted = [
        doc
        for doc in _emitted(out)
        if any(m["Name"] == "FeedbackUp" for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])
    ]
    assert len(counted) == 1
    assert counted[0]["model"] == "stand-in"
    assert counted[0]["FeedbackUp"] == [1.0]
    assert counted[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["model", "service"]]

    history = call("GET", f"{base}/messages", token=token).body["items"]
    assert history[0]["feedback"] is None  # the user's message
    assert history[1]["feedback"] == rated.body["feedback"]
    stored = [item for item in ChatItem.query(base.rsplit("/", 1)[1]) if item.sk.startswith("M#")]
    raw = json.dumps([item.serialize() for item in stored], default=str)
    assert marker not in raw  # sealed like the content
    assert "sealed_feedback" in raw

    again = _feedback(base, token, reply_id, {"rating": "down"})
    assert again.status == 200, again.body
    assert (again.body["feedback"]["rating"], again.body["feedback"]["comment"]) == ("down", None)
    exported = call("GET", f"{base}/export", token=token).body
    assert exported["messages"][1]["feedback"]["rating"] == "down"
    markdown = call("GET", f"{base}/export", token=token, query="format=markdown").body
    assert "Feedback: down" in markdown

    removed = _feedback(base, token, reply_id, method="DELETE")
    assert removed.status == 200, removed.body
    assert removed.body["feedback"] is None
    assert call("GET", f"{base}/messages", token=token).body["items"][1]["feedback"] is None
    assert _feedback(base, token, reply_id, method="DELETE").status == 200  # none to remove: still 200


def test_feedback_is_refused_clearly_and_changes_nothing(settings_env: pytest.MonkeyPatch) -> None:
    base, token, chat = _exchange()
    reply_id, user_id = chat["reply"]["message_id"], chat["message"]["message_id"]
    before = call("GET", f"{base}/messages", token=token).body

    assert_error(_feedback(base, token, user_id, {"rating": "up"}), 422, "validation_failed")
    for wrong in ({"rating": "meh"}, {}, {"rating": "up", "comment": "x" * 1001}, {"rating": "up", "x": 1}):
        assert_error(_feedback(base, token, reply_id, wrong), 422, "validation_failed")
    assert_error(_feedback(base, token, str(uuid.uuid4()), {"rating": "up"}), 404, "message_not_found")
    assert_error(_feedback(base, token, "not-a-uuid", {"rating": "up"}), 404, "message_not_found")
    other = create(body={}).body
    assert_error(
        _feedback(base, other["session_token"], reply_id, {"rating": "up"}), 404, "session_not_found"
    )
    assert_error(_feedback(base, None, reply_id, {"rating": "up"}), 401, "token_required")
    assert call("GET", f"{base}/messages", token=token).body == before

    assert _feedback(base, token, reply_id, {"rating": "up", "comment": "x" * 1000}).status == 200
    assert call("PATCH", base, token=token, body={"status": "ended"}).status == 200
    assert_error(_feedback(base, token, reply_id, {"rating": "down"}), 409, "session_ended")


def test_feedback_is_rate_limited_per_session(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("FEEDBACK_LIMIT_PER_HOUR", "2")
    base, token, chat = _exchange()
    reply_id = chat["reply"]["message_id"]
    for rating in ("up", "down"):
        assert _feedback(base, token, reply_id, {"rating": rating}).status == 200
    limited = _feedback(base, token, reply_id, {"rating": "up"})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert call("GET", f"{base}/messages", token=token).body["items"][1]["feedback"]["rating"] == "down"


def test_feedback_on_an_older_reply_is_found_past_the_first_page() -> None:
    base, token, first = _exchange()
    for n in range(30):  # 60 messages newer than the first reply: past one page of the search (50)
        assert call("POST", f"{base}/chat", token=token, body={"content": f"again {n}"}).status == 201
    rated = _feedback(base, token, first["reply"]["message_id"], {"rating": "up"})
    assert rated.status == 200, rated.body
    oldest = call("GET", f"{base}/messages", token=token, query="limit=2").body["items"]
    assert oldest[1]["feedback"]["rating"] == "up"


def test_the_panic_button_takes_the_feedback_with_the_message() -> None:
    base, token, chat = _exchange()
    assert _feedback(base, token, chat["reply"]["message_id"], {"rating": "up", "comment": "c"}).status == 200
    assert call("DELETE", base, token=token).status == 200
    assert list(ChatItem.query(base.rsplit("/", 1)[1])) == []
    assert_error(
        _feedback(base, token, chat["reply"]["message_id"], {"rating": "up"}), 404, "session_not_found"
    )
