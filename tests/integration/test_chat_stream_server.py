"""The server the Lambda Web Adapter talks to on AWS (functions/chat_stream/app.py), run on a loopback
port against in-process moto: the adapter's readiness check, the preflight (a 204 with no body), any
method answered in JSON, a streamed chat in chunked framing, and a client that leaves after the head
still gets its reply stored."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import HTTPServer

import pytest

from chatvault.dal import messages
from chatvault.http import stream_server
from functions.chat_stream import app
from infra.template import Stack
from tests.helpers import create

pytestmark = pytest.mark.usefixtures("aws", "settings_env")


@pytest.fixture
def server() -> Iterator[int]:
    httpd = HTTPServer(("127.0.0.1", 0), stream_server._Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _request(
    port: int, method: str, path: str, body: bytes = b"", **headers: str
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers=headers)
    return connection.getresponse()


def test_the_function_timeout_the_server_assumes_is_the_templates() -> None:
    assert Stack.from_template().functions()["ChatStreamFunction"].timeout == app.TIMEOUT_S


def test_readiness_preflight_and_other_methods(server: int) -> None:
    ready = _request(server, "GET", "/")
    assert (ready.status, ready.read()) == (200, b"ok")
    preflight = _request(
        server,
        "OPTIONS",
        "/api/v1/chat",
        Origin="https://chat.example",
        **{"Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.getheader("Content-Length") == "0"
    assert preflight.getheader("Transfer-Encoding") is None
    assert preflight.getheader("Access-Control-Allow-Origin") == "*"
    assert "POST" in str(preflight.getheader("Access-Control-Allow-Methods"))
    assert preflight.read() == b""
    other = _request(server, "PUT", "/api/v1/chat")
    assert other.status == 405
    assert json.loads(other.read())["error"]["code"] == "method_not_allowed"


def test_a_streamed_chat_in_chunks(server: int) -> None:
    session = create().body
    path = f"/api/v1/sessions/{session['session_id']}/chat"
    reply = _request(
        server,
        "POST",
        path,
        json.dumps({"content": "Hello"}).encode(),
        Accept="text/event-stream",
        **{"X-Session-Token": session["session_token"], "Content-Type": "application/json"},
    )
    assert reply.status == 200
    assert reply.getheader("Transfer-Encoding") == "chunked"
    text = reply.read().decode()  # http.client undoes the chunked framing
    assert text.startswith("event: message\n")
    assert "event: delta\n" in text
    assert text.rstrip().split("\n")[-2] == "event: reply"


def test_a_client_that_leaves_after_the_head_still_gets_its_reply_stored(server: int) -> None:
    session = create().body
    sid = session["session_id"]
    body = json.dumps({"content": "Hello there"}).encode()
    with socket.create_connection(("127.0.0.1", server), timeout=30) as raw:
        raw.sendall(
            f"POST /api/v1/sessions/{sid}/chat HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"X-Session-Token: {session['session_token']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert raw.recv(12).startswith(b"HTTP/1.1 200")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # a reset
    for _ in range(100):
        stored = messages.page(sid, descending=False, limit=10, after=None).messages
        if len(stored) == 2:
            break
        threading.Event().wait(0.1)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].content == 'You said: "Hello there".'
