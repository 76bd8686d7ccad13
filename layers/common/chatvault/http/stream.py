"""The chat's streaming front door (ChatStreamFunction): a plain HTTP request in, a status, headers and
body chunks out, the events sent as the model writes them.

API Gateway's HTTP APIs cannot stream, and the managed Python runtime cannot stream a response by
itself: on AWS this runs behind a REST API whose integration streams (`ResponseTransferMode`), in a
function that the Lambda Web Adapter turns into a small HTTP server (functions/chat_stream/app.py).
Locally `make dev` calls `respond` in the function's worker and passes each chunk on as it comes. Both
serve the same two routes as ChatFunction, with the same rules: the request is checked here as the
resolver checks it (size, JSON, fields, unknown query parameters: the same errors), the caller is who
its headers say (the REST API has no JWT authorizer: a bearer token is verified here in jwt mode too),
and without `Accept: text/event-stream` the answer is the JSON form."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from pydantic import BaseModel, ValidationError

from chatvault.core import deadline
from chatvault.core.errors import (
    ChatVaultError,
    InvalidJsonError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    UnauthenticatedError,
    ValidationFailedError,
)
from chatvault.core.observability import logger
from chatvault.core.settings import get_settings
from chatvault.http import body, errors, sse
from chatvault.logic.rules.access import Caller

SESSION_CHAT = re.compile(r"^/api/v1/sessions/(?P<session_id>[^/]+)/chat$")
SESSIONLESS_CHAT = "/api/v1/chat"

Chunks = Iterator[bytes]
PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST,OPTIONS",
    "Access-Control-Allow-Headers": "authorization,content-type,accept,x-session-token",
    "Access-Control-Max-Age": "600",
}


@dataclass(frozen=True)
class PlainRequest:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names
    body: bytes = b""
    source_ip: str | None = None
    request_id: str = "unknown"
    remaining_ms: int | None = None  # the invocation's time left, when known


class _Remaining:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def respond(request: PlainRequest) -> tuple[int, dict[str, str], Chunks]:
    """The answer: status, headers, and the body as chunks (one for JSON; an event each for SSE). The
    caller must run the chunks to their end, sent or not (a client that went away): the reply is
    stored at the end."""
    deadline.start(_Remaining(request.remaining_ms) if request.remaining_ms is not None else None)
    cors = _cors(request.headers.get("origin"))
    if request.method == "OPTIONS":  # a preflight: as the HTTP API's CORS configuration answers it
        if cors:
            cors.update(PREFLIGHT)
        return 204, cors, iter([])
    try:
        status, headers, chunks = _answer(request)
    except _InvalidBody as exc:
        status, headers, chunks = _error(errors.from_validation(exc.errors, request.request_id))
    except ChatVaultError as exc:
        status, headers, chunks = _error(errors.from_domain(exc, request.request_id))
    except Exception as exc:
        logger.exception("unhandled error", extra={"error_type": type(exc).__name__})
        status, headers, chunks = _error(errors.internal(request.request_id))
    return status, {**headers, **cors}, chunks


def _answer(request: PlainRequest) -> tuple[int, dict[str, str], Chunks]:
    from chatvault.logic.chat import chat, start_chat
    from chatvault.logic.chat_stream import chat_events
    from chatvault.models.api import ChatRequest, StartChatRequest

    matched = SESSION_CHAT.match(request.path)
    if (matched is None and request.path != SESSIONLESS_CHAT) or not get_settings().chat_on:
        raise RouteNotFoundError()  # no such route, or no model: the chat routes are off
    if request.method != "POST":
        raise MethodNotAllowedError(["POST"])
    if request.query:
        raise ValidationFailedError(f"query.{sorted(request.query)[0]}", "is not a parameter of this route")
    if len(request.body) > get_settings().max_body_bytes:
        raise PayloadTooLargeError()
    model = ChatRequest if matched is not None else StartChatRequest
    if get_settings().auth_mode == "jwt":  # as the HTTP API's authorizer: 401 before the body is read
        caller = _caller(request)
        parsed = _parsed(request.body, model)
    else:
        parsed = _parsed(request.body, model)
        caller = _caller(request)
    session_id = matched.group("session_id") if matched is not None else None
    if not sse.wants_events(request.headers.get("accept")):
        pair: BaseModel
        if session_id is not None:
            pair, created = chat(session_id, parsed, caller)
        else:
            pair, created = start_chat(parsed, caller)
        return (
            201 if created else 200,
            {"Content-Type": "application/json", **errors.PRIVATE_HEADERS},
            iter([pair.model_dump_json().encode()]),
        )
    events = chat_events(session_id, parsed, caller)
    first = next(events)  # a failure before anything is stored raises here: the usual error answer
    return (
        200,
        {"Content-Type": sse.CONTENT_TYPE, **sse.HEADERS},
        sse.stream(chain([first], events), request.request_id),
    )


def _parsed(raw: bytes, model: Any) -> Any:
    try:
        text = raw.decode("utf-8") if raw else "{}"
        value = body.parse(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidJsonError() from None
    if not isinstance(value, dict):
        raise ValidationFailedError("body", "must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _InvalidBody(exc) from None


class _InvalidBody(Exception):
    """A body the request model refuses: answered as the resolver answers (422 with details)."""

    def __init__(self, exc: ValidationError) -> None:
        super().__init__("invalid body")
        self.errors: list[dict[str, Any]] = [
            {**err, "loc": ("body", *err.get("loc", ()))} for err in exc.errors()
        ]


def _caller(request: PlainRequest) -> Caller:
    settings = get_settings()
    authorization = request.headers.get("authorization")
    if settings.auth_mode == "jwt" and not authorization:
        raise UnauthenticatedError()
    subject = None
    if settings.accounts and authorization:
        from chatvault.logic.rules import bearer

        subject = bearer.subject_of(authorization)
    return Caller(
        token=request.headers.get("x-session-token") or None, subject=subject, client_ip=request.source_ip
    )


def _error(response: Any) -> tuple[int, dict[str, str], Chunks]:
    headers = {"Content-Type": "application/json", **response.headers}
    return response.status_code, headers, iter([str(response.body).encode()])


def _cors(origin: str | None) -> dict[str, str]:
    """What API Gateway's CORS configuration adds on the HTTP API; a streaming integration passes the
    function's own headers through, so the function adds them (AllowedOrigins, ALLOWED_ORIGINS)."""
    allowed = [o.strip() for o in get_settings().allowed_origins.split(",") if o.strip()]
    if not origin or not ("*" in allowed or origin in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": "*" if "*" in allowed else origin,
        "Access-Control-Expose-Headers": "retry-after",
        "Vary": "Origin",
    }
