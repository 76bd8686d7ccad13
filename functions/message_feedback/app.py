"""PUT and DELETE /api/v1/sessions/{session_id}/messages/{message_id}/feedback: a person's rating of a
reply (MessageFeedbackFunction)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.message_feedback import clear_feedback, set_feedback
from chatvault.models.api import FeedbackRequest, MessageOut

app = ApiResolver()
PATH = "/api/v1/sessions/<session_id>/messages/<message_id>/feedback"


@app.put(
    PATH,
    summary="Rate a reply: up or down, with an optional comment (replaces the previous feedback)",
    description=(
        "On an assistant message only (another role: 422). The answer is the message with its"
        " `feedback`. A session may give or remove feedback FEEDBACK_LIMIT_PER_HOUR times an hour"
        " (120 by default; 429 beyond)."
    ),
    tags=["messages"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, MessageOut, "The message with its feedback.", 400, 401, 404, 409, 422, 429),
)
@tracer.capture_method
def put(session_id: str, message_id: str, body: Annotated[FeedbackRequest, Body()]) -> Response[str]:
    return app.reply(set_feedback(session_id, message_id, body, app.caller))


@app.delete(
    PATH,
    summary="Remove the feedback on a reply",
    description="The answer is the message, its `feedback` null (also when it had none).",
    tags=["messages"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, MessageOut, "The message without feedback.", 401, 404, 409, 422, 429),
)
@tracer.capture_method
def delete(session_id: str, message_id: str) -> Response[str]:
    return app.reply(clear_feedback(session_id, message_id, app.caller))


lambda_handler = api_handler(app)
