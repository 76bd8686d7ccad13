"""The chat's streaming server (ChatStreamFunction, functions/chat_stream/app.py): on AWS the Lambda Web
Adapter (a layer; AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) starts run.sh, which runs `serve()`: a
one-request-at-a-time HTTP server on 127.0.0.1:$AWS_LWA_PORT, as a Lambda execution environment serves
one invocation at a time. The adapter hands it each invocation as an HTTP request (the API Gateway
request context in the `x-amzn-request-context` header, the Lambda context in `x-amzn-lambda-context`)
and streams the body it writes back through the REST API, whose integration streams. `make dev` calls
`respond` directly and passes each chunk on (infra/local/runtime.py). The chat's events themselves are
http/stream.py's."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chatvault.core.observability import metrics
from chatvault.http.stream import PlainRequest, respond

# ChatStreamFunction's Timeout in template.yaml (a test holds them equal): the invocation's length when
# the adapter does not say its deadline, so that a reply's guard never lapses while it is being made
TIMEOUT_S = 120


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/":  # the adapter's readiness check
            self._plain(200, b"ok")
            return
        self._any()

    def __getattr__(self, name: str) -> Any:
        # every other method (POST, the OPTIONS preflight, PUT...) is the service's to answer, in JSON
        if name.startswith("do_"):
            return self._any
        raise AttributeError(name)

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        # The request context holds the caller's IP: read for the rate limits, never logged
        context: dict[str, Any] = json.loads(headers.pop("x-amzn-request-context", "") or "{}")
        lambda_context: dict[str, Any] = json.loads(headers.pop("x-amzn-lambda-context", "") or "{}")
        url = urlsplit(self.path)
        deadline_ms = lambda_context.get("deadline")
        status, out_headers, chunks = respond(
            PlainRequest(
                method=self.command,
                path=url.path,
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                headers=headers,
                body=body,
                source_ip=(context.get("identity") or {}).get("sourceIp"),
                request_id=str(context.get("requestId") or lambda_context.get("request_id") or "unknown"),
                # without the adapter's deadline: the function's whole Timeout (template.yaml)
                remaining_ms=int(deadline_ms - time.time() * 1000) if deadline_ms else TIMEOUT_S * 1000,
            )
        )
        try:
            send(self, status, out_headers, chunks)
        finally:
            metrics.flush_metrics()

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log here: API Gateway's access log records each request, without the IP."""


def send(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], chunks: Iterator[bytes]
) -> None:
    """The head, then each chunk as it comes (chunked). A client that went away stops the writing, never
    the reading: the chunks are run to their end, so the reply is still stored. No body for a 204."""
    gone = False
    try:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if status in (204, 304):
            handler.send_header("Content-Length", "0")
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
    except OSError:
        gone = True
    for chunk in chunks:
        if gone or not chunk or status in (204, 304):
            continue
        try:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
        except OSError:
            gone = True
    if gone:
        handler.close_connection = True
        return
    if status not in (204, 304):
        try:
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True


def lambda_handler(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """For tools (the benchmark's cold start, tests/events/chat_stream.json): one request in the shape
    of PlainRequest (`body` as text), answered whole. On AWS the adapter calls the server instead."""
    fields = {**event, "body": str(event.get("body") or "").encode()}
    status, headers, chunks = respond(PlainRequest(**fields))
    return {"statusCode": status, "headers": headers, "body": b"".join(chunks).decode()}


def serve() -> None:
    port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or "8000")
    HTTPServer(("127.0.0.1", port), _Handler).serve_forever()
