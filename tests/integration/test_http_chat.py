"""The chat through HTTP on the local stack (`make dev`, the stand-in model), as a chatbot front end
uses it: the seeds' flow, the sessionless route, retries that store nothing twice, two chats at once,
each model failure with its user message kept and its retry completing the pair, bad input."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.conftest import UNLIMITED
from tests.integration.local_stack import LocalStack, local_stack

pytestmark = pytest.mark.http
TIMEOUT = 30


def _session(stack: LocalStack) -> tuple[str, dict[str, str]]:
    body = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    return f"{stack.api}/api/v1/sessions/{body['session_id']}", {"X-Session-Token": body["session_token"]}


def _chat(url: str, auth: dict[str, str], content: str, message_id: str | None = None) -> requests.Response:
    body: dict[str, Any] = {"content": content}
    if message_id:
        body["message_id"] = message_id
    return requests.post(f"{url}/chat", headers=auth, json=body, timeout=TIMEOUT)


def _messages(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    reply = requests.get(f"{url}/messages", headers=auth, params={"limit": 100}, timeout=10)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def test_the_seeds_flow_hello_then_what_did_i_say(stack: LocalStack) -> None:
    url, auth = _session(stack)
    first = _chat(url, auth, "Hello, my name is Ada", str(uuid.uuid4()))
    assert first.status_code == 201, first.text
    assert first.headers["Cache-Control"] == "no-store"
    pair = first.json()
    assert pair["message"]["role"] == "user"
    assert pair["reply"]["role"] == "assistant"
    assert pair["reply"]["content"] == 'You said: "Hello, my name is Ada".'
    second = _chat(url, auth, "What did I say?").json()
    assert second["reply"]["content"] == (
        'You said: "What did I say?". Earlier you said: "Hello, my name is Ada"'
    )
    # exactly as the history returns them, in order
    assert _messages(url, auth) == [pair["message"], pair["reply"], second["message"], second["reply"]]
    session = requests.get(url, headers=auth, timeout=10).json()
    assert session["message_count"] == 4
    assert session["preview"] == second["reply"]["content"][:120]
    reply = pair["reply"]
    assert reply["metadata"]["model"] == "stand-in"
    assert reply["metadata"]["token_count"] == 7
    assert isinstance(reply["metadata"]["processing_time_ms"], int)
    assert reply["metadata"]["attributes"]["input_tokens"].isdigit()


def test_the_sessionless_chat_creates_a_session_whose_token_works(stack: LocalStack) -> None:
    reply = requests.post(f"{stack.api}/api/v1/chat", json={"content": "Hello"}, timeout=TIMEOUT)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    token = body["session"]["session_token"]
    sid = body["session"]["session_id"]
    assert body["reply"]["content"] == 'You said: "Hello".'
    url, auth = f"{stack.api}/api/v1/sessions/{sid}", {"X-Session-Token": token}
    assert [m["role"] for m in _messages(url, auth)] == ["user", "assistant"]
    # with a session_id it is the session's chat route, answered as that route answers
    more = requests.post(
        f"{stack.api}/api/v1/chat",
        headers=auth,
        json={"session_id": sid, "content": "What did I say?"},
        timeout=TIMEOUT,
    )
    assert more.status_code == 201, more.text
    assert set(more.json()) == {"message", "reply"}
    assert more.json()["reply"]["content"].endswith('Earlier you said: "Hello"')
    # without the token the named session is not the caller's
    stranger = requests.post(
        f"{stack.api}/api/v1/chat", json={"session_id": sid, "content": "hi"}, timeout=TIMEOUT
    )
    assert stranger.status_code == 401
    assert stranger.json()["error"]["code"] == "token_required"


def test_a_retry_with_the_same_message_id_stores_nothing_twice(stack: LocalStack) -> None:
    url, auth = _session(stack)
    mid = str(uuid.uuid4())
    first = _chat(url, auth, "Hello", mid)
    again = _chat(url, auth, "Hello", mid)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(_messages(url, auth)) == 2
    other = _chat(url, auth, "Another text", mid)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "message_id_conflict"
    assert len(_messages(url, auth)) == 2


@pytest.mark.parametrize(
    ("command", "status", "code"),
    [
        ("/stand-in throttle", 503, "model_unavailable"),
        ("/stand-in timeout", 504, "model_timeout"),
        ("/stand-in error", 502, "model_unavailable"),
    ],
)
def test_each_model_failure_keeps_the_user_message_and_the_retry_completes_the_pair(
    stack: LocalStack, command: str, status: int, code: str
) -> None:
    url, auth = _session(stack)
    mid = str(uuid.uuid4())
    failed = _chat(url, auth, command, mid)
    assert failed.status_code == status, failed.text
    assert failed.json()["error"]["code"] == code
    assert ("Retry-After" in failed.headers) == (status == 503)
    stored = _messages(url, auth)
    assert [(m["role"], m["message_id"]) for m in stored] == [("user", mid)]
    retried = _chat(url, auth, command, mid)
    assert retried.status_code == 201, retried.text
    assert retried.json()["message"] == stored[0]
    assert [m["role"] for m in _messages(url, auth)] == ["user", "assistant"]
    assert _chat(url, auth, command, mid).status_code == 200  # and once more: nothing new


def test_a_sessionless_chat_that_fails_hands_over_its_new_session(stack: LocalStack) -> None:
    mid = str(uuid.uuid4())
    failed = requests.post(
        f"{stack.api}/api/v1/chat", json={"content": "/stand-in throttle", "message_id": mid}, timeout=TIMEOUT
    )
    assert failed.status_code == 503
    body = failed.json()
    assert body["error"]["code"] == "model_unavailable"
    assert body["message"]["message_id"] == mid
    url = f"{stack.api}/api/v1/sessions/{body['session']['session_id']}"
    auth = {"X-Session-Token": body["session"]["session_token"]}
    retried = _chat(url, auth, "/stand-in throttle", mid)
    assert retried.status_code == 201, retried.text
    assert [m["role"] for m in _messages(url, auth)] == ["user", "assistant"]


def test_bad_chats_are_client_errors_that_store_nothing(stack: LocalStack) -> None:
    url, auth = _session(stack)
    empty = requests.post(f"{url}/chat", headers=auth, json={"content": ""}, timeout=10)
    cases = [
        (empty, 422, "validation_failed"),
        (
            requests.post(f"{url}/chat", headers=auth, json={"content": "x", "role": "user"}, timeout=10),
            422,
            "validation_failed",
        ),
        (requests.post(f"{url}/chat", headers=auth, data="{", timeout=10), 400, "invalid_json"),
        (_chat(url, auth, "x" * 32769), 413, "message_too_large"),
        (_chat(url, {}, "hi"), 401, "token_required"),
        (_chat(url, {"X-Session-Token": "wrong"}, "hi"), 404, "session_not_found"),
        (_chat(f"{stack.api}/api/v1/sessions/not-a-uuid", auth, "hi"), 404, "session_not_found"),
    ]
    for reply, status, code in cases:
        assert reply.status_code == status, reply.text
        assert reply.json()["error"]["code"] == code
    assert _messages(url, auth) == []
    ended = requests.patch(url, headers=auth, json={"status": "ended"}, timeout=10)
    assert ended.status_code == 200
    refused = _chat(url, auth, "hi")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "session_ended")


def test_after_the_panic_button_the_chat_is_gone(stack: LocalStack) -> None:
    url, auth = _session(stack)
    assert _chat(url, auth, "Hello").status_code == 201
    assert requests.delete(url, headers=auth, timeout=30).json()["erased"]["messages"] == 2
    gone = _chat(url, auth, "Hello again")
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "session_not_found")


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev STAND_IN_DELAY_MS=4000`: a reply takes long enough for a second chat to meet it, even
    on a loaded machine (its history read and its own request take their time)."""
    with local_stack(tmp_path_factory.mktemp("slow"), UNLIMITED, {"STAND_IN_DELAY_MS": "4000"}) as running:
        yield running


def test_two_chats_at_once_on_one_session_one_is_refused_and_stores_nothing(slow_stack: LocalStack) -> None:
    url, auth = _session(slow_stack)
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(_chat(url, auth, "first")))
    first.start()
    # the first chat's guard is taken with its user message: wait for that message, then chat again
    for _ in range(100):
        if _messages(url, auth):
            break
        threading.Event().wait(0.05)
    second = _chat(url, auth, "second")
    first.join(TIMEOUT)
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "reply_in_progress"
    assert [a.status_code for a in answers] == [201]
    assert [m["content"] for m in _messages(url, auth)] == ["first", 'You said: "first".']
    assert _chat(url, auth, "third").status_code == 201  # the guard was freed with the reply
