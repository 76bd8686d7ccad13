"""The streamed chat through HTTP on the local stack (`make dev` streams on its one port, as the
streaming API does on AWS): deltas spread over time, the final reply as stored, a replay without
deltas, a client that leaves after the first delta, failures as `error` events, the Stop."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.conftest import UNLIMITED
from tests.integration.local_stack import LocalStack, local_stack

pytestmark = pytest.mark.http
STREAM = {"Accept": "text/event-stream"}
WORD_MS = 80  # the stand-in's pause between words in this module's stack


@pytest.fixture(scope="module")
def streaming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("stream"), UNLIMITED, {"STAND_IN_WORD_MS": str(WORD_MS)}) as s:
        yield s


def _session(stack: LocalStack) -> tuple[str, dict[str, str]]:
    body = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    return f"{stack.api}/api/v1/sessions/{body['session_id']}", {"X-Session-Token": body["session_token"]}


def _events(reply: requests.Response) -> Iterator[tuple[float, str, Any]]:
    """(arrival time, event, data) as each event arrives."""
    name, data = "", ""
    for line in reply.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and name:
            yield time.monotonic(), name, json.loads(data)
            name, data = "", ""


def _stream(url: str, auth: dict[str, str], body: dict[str, Any]) -> list[tuple[float, str, Any]]:
    with requests.post(
        f"{url}/chat", headers={**auth, **STREAM}, json=body, stream=True, timeout=60
    ) as reply:
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        assert reply.headers["Cache-Control"] == "no-store"
        return list(_events(reply))


def _messages(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = requests.get(f"{url}/messages", headers=auth, timeout=10).json()["items"]
    return items


def test_deltas_arrive_as_the_model_writes_and_the_reply_is_what_is_stored(streaming: LocalStack) -> None:
    url, auth = _session(streaming)
    events = _stream(
        url, auth, {"content": "one two three four five six seven eight", "message_id": str(uuid.uuid4())}
    )
    names = [name for _, name, _ in events]
    assert names[0] == "message"
    assert names[-1] == "reply"
    deltas = [(at, data["text"]) for at, name, data in events if name == "delta"]
    assert len(deltas) >= 10
    # spread over time: the first well before the last (the stand-in pauses between words)
    assert deltas[-1][0] - deltas[0][0] >= (len(deltas) - 1) * WORD_MS / 1000 * 0.5
    reply = events[-1][2]
    assert "".join(text for _, text in deltas) == reply["content"]
    stored = _messages(url, auth)
    assert stored == [events[0][2], reply]


def test_a_replay_streams_the_stored_pair_without_deltas(streaming: LocalStack) -> None:
    url, auth = _session(streaming)
    mid = str(uuid.uuid4())
    first = _stream(url, auth, {"content": "Hello", "message_id": mid})
    again = _stream(url, auth, {"content": "Hello", "message_id": mid})
    assert [name for _, name, _ in again] == ["message", "reply"]
    assert again[0][2] == first[0][2]
    assert again[1][2] == first[-1][2]
    assert len(_messages(url, auth)) == 2


def test_a_client_that_leaves_after_the_first_delta_finds_the_whole_reply_stored(
    streaming: LocalStack,
) -> None:
    url, auth = _session(streaming)
    words = " ".join(f"w{i}" for i in range(20))
    host = urlsplit(streaming.api)
    body = json.dumps({"content": words}).encode()
    path = urlsplit(f"{url}/chat").path
    with socket.create_connection((host.hostname, host.port), timeout=30) as raw:
        raw.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host.netloc}\r\nAccept: text/event-stream\r\n"
            f"X-Session-Token: {auth['X-Session-Token']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"event: delta" not in received:
            received += raw.recv(4096)
        # the tab is closed: the connection goes, mid-reply
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stored = _messages(url, auth)
        if len(stored) == 2:
            break
        time.sleep(0.2)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == f'You said: "{words}".'
    assert "stop_reason" not in stored[1]["metadata"]["attributes"]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("/stand-in throttle", "model_unavailable"),
        ("/stand-in timeout", "model_timeout"),
        ("/stand-in error", "model_unavailable"),
    ],
)
def test_a_model_failure_is_an_error_event_and_the_retry_completes_the_pair(
    streaming: LocalStack, command: str, code: str
) -> None:
    url, auth = _session(streaming)
    mid = str(uuid.uuid4())
    failed = _stream(url, auth, {"content": command, "message_id": mid})
    assert [name for _, name, _ in failed] == ["message", "error"]
    assert failed[-1][2]["error"]["code"] == code
    assert [m["role"] for m in _messages(url, auth)] == ["user"]
    retried = _stream(url, auth, {"content": command, "message_id": mid})
    assert [name for _, name, _ in retried][-1] == "reply"
    assert [m["role"] for m in _messages(url, auth)] == ["user", "assistant"]


def test_a_refusal_before_anything_is_stored_is_an_ordinary_error_response(streaming: LocalStack) -> None:
    url, auth = _session(streaming)
    for headers, body, status, code in (
        ({}, {"content": "hi"}, 401, "token_required"),
        (auth, {"content": ""}, 422, "validation_failed"),
        (auth, {"content": "hi", "role": "user"}, 422, "validation_failed"),
        (auth, {"content": "x" * 32769}, 413, "message_too_large"),
    ):
        reply = requests.post(f"{url}/chat", headers={**headers, **STREAM}, json=body, timeout=10)
        assert reply.status_code == status, reply.text
        assert reply.json()["error"]["code"] == code
    assert _messages(url, auth) == []


def test_the_sessionless_stream_sends_the_new_session_first(streaming: LocalStack) -> None:
    with requests.post(
        f"{streaming.api}/api/v1/chat", headers=STREAM, json={"content": "Hello"}, stream=True, timeout=60
    ) as reply:
        events = list(_events(reply))
    assert [name for _, name, _ in events][:2] == ["session", "message"]
    session = events[0][2]
    url = f"{streaming.api}/api/v1/sessions/{session['session_id']}"
    assert len(_messages(url, {"X-Session-Token": session["session_token"]})) == 2


def test_stop_ends_a_streamed_reply_and_stores_it_as_far_as_it_got(streaming: LocalStack) -> None:
    url, auth = _session(streaming)
    words = " ".join(f"w{i}" for i in range(60))  # about 5 s of reply at WORD_MS
    nothing = requests.post(f"{url}/chat/stop", headers=auth, timeout=10)
    assert (nothing.status_code, nothing.json()) == (200, {"stopping": False})
    events: list[tuple[float, str, Any]] = []

    def listen() -> None:
        with requests.post(
            f"{url}/chat", headers={**auth, **STREAM}, json={"content": words}, stream=True, timeout=60
        ) as reply:
            for event in _events(reply):
                events.append(event)

    listener = threading.Thread(target=listen)
    listener.start()
    while not any(name == "delta" for _, name, _ in events):
        time.sleep(0.05)
    assert requests.post(f"{url}/chat/stop", headers=auth, timeout=10).json() == {"stopping": True}
    stopped_at = time.monotonic()
    listener.join(30)
    assert events[-1][1] == "reply"
    assert events[-1][0] - stopped_at < 3  # within the stop check's second (and a word)
    reply = events[-1][2]
    assert reply["metadata"]["attributes"]["stop_reason"] == "stopped"
    full = f'You said: "{words}".'
    assert full.startswith(reply["content"])
    assert len(reply["content"]) < len(full)
    assert _messages(url, auth)[-1] == reply
    assert requests.get(url, headers=auth, timeout=10).json()["replying"] is False


def test_the_http_api_form_answers_the_same_events_at_once(stack: LocalStack) -> None:
    """The shared stack's chat answers the streamed form too (a deployment's HTTP API sends the same
    events when the reply is complete; here the one port streams them)."""
    url, auth = _session(stack)
    events = _stream(url, auth, {"content": "Hello"})
    assert events[0][1] == "message"
    assert events[-1][1] == "reply"
    assert events[-1][2] == _messages(url, auth)[-1]
