"""POST /api/v1/sessions/{session_id}/chat and POST /api/v1/chat: the user message, the model's reply,
both stored, the reply exactly once (ChatFunction)."""

from collections.abc import Iterator
from itertools import chain
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.core.settings import get_settings
from chatvault.http import docs, sse
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.chat import chat, start_chat
from chatvault.logic.chat_stream import chat_events
from chatvault.models.api import ChatOut, ChatRequest, StartChatRequest, StartedChatOut

# ModelId empty: the chat routes are off (404) and a team's own bot answers (README, "Your own bot")
app = ApiResolver(switched_on=lambda: get_settings().chat_on)

FAILURES = (400, 401, 403, 404, 409, 422, 429, 502, 504)


def _replayed(model: type[ChatOut] | type[StartedChatOut]) -> dict[int, Any]:
    return {
        200: {
            "description": "A retry (same message_id and content) whose reply is stored: the same pair.",
            "content": {"application/json": {"model": model}},
        }
    }


@app.post(
    "/api/v1/sessions/<session_id>/chat",
    summary="Send a user message and get the model's reply, both stored (idempotent with a message_id)",
    tags=["chat"],
    security=docs.JWT_AUTH,
    responses={
        **docs.responses(201, ChatOut, "The stored user message and the stored reply.", *FAILURES),
        **_replayed(ChatOut),
    },
)
@tracer.capture_method
def session_chat(session_id: str, body: Annotated[ChatRequest, Body()]) -> Response[str]:
    if sse.wants_events(app.current_event.headers.get("accept")):
        return _events(chat_events(session_id, body, app.caller))
    pair, created = chat(session_id, body, app.caller)
    return app.reply(pair, status=201 if created else 200)


@app.post(
    "/api/v1/chat",
    summary="Chat without a session first: a new session (when no session_id), the message, the reply",
    tags=["chat"],
    security=docs.JWT_AUTH,
    responses={
        **docs.responses(
            201,
            StartedChatOut,
            "The new session (with its token, this once, in anonymous mode) or none when session_id was "
            "sent, the stored user message and the stored reply. A failure after the session was created "
            "carries `session` (and `message`, when stored) beside `error`.",
            *FAILURES,
        ),
        **_replayed(StartedChatOut),
    },
)
@tracer.capture_method
def sessionless_chat(body: Annotated[StartChatRequest, Body()]) -> Response[str]:
    if sse.wants_events(app.current_event.headers.get("accept")):
        return _events(chat_events(None, body, app.caller))
    started, created = start_chat(body, app.caller)
    return app.reply(started, status=201 if created else 200)


def _events(events: Iterator[tuple[str, Any]]) -> Response[str]:
    """The streamed form through the HTTP API, which cannot stream: the same events, sent when the reply
    is complete (the streaming API, ChatStreamFunction, sends them as they are written). A failure before
    anything is stored is the usual error response, raised by the first event."""
    first = next(events)
    body = b"".join(sse.stream(chain([first], events), app.request_id)).decode()
    return Response(status_code=200, content_type=sse.CONTENT_TYPE, body=body, headers=dict(sse.HEADERS))


lambda_handler = api_handler(app)
