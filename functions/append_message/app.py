"""POST /api/v1/sessions/{session_id}/messages: append a message (AppendMessageFunction)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.append_message import append_message
from chatvault.models.api import AppendMessageRequest, MessageOut

app = ApiResolver()


REPLAYED: dict[int, Any] = {
    200: {
        "description": "A retry with the same message_id and body: the stored message, stored once.",
        "content": {"application/json": {"model": MessageOut}},
    }
}


@app.post(
    "/api/v1/sessions/<session_id>/messages",
    summary="Append a message (idempotent with a client message_id; roles: ClientRoles)",
    tags=["messages"],
    security=docs.JWT_AUTH,
    responses={
        **docs.responses(201, MessageOut, "The stored message.", 400, 401, 403, 404, 409, 422, 429),
        **REPLAYED,
    },
)
@app.post(
    "/api/v1/service/sessions/<session_id>/messages",
    summary="Append a message of any role (the bot's back end, IAM)",
    tags=["service"],
    security=docs.SIGV4_AUTH,
    responses={
        **docs.service_responses(201, MessageOut, "The stored message.", 400, 404, 409, 422, 429),
        **REPLAYED,
    },
)
@tracer.capture_method
def append(session_id: str, body: Annotated[AppendMessageRequest, Body()]) -> Response[str]:
    message, created = append_message(session_id, body, app.caller)
    return app.reply(message, status=201 if created else 200)


lambda_handler = api_handler(app)
