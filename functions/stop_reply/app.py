"""POST /api/v1/sessions/{session_id}/chat/stop: stop the reply being made (StopReplyFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.core.settings import get_settings
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.stop_reply import stop_reply
from chatvault.models.api import StopReplyOut

# ModelId empty: the chat routes are off (404) and a team's own bot answers (README, "Your own bot")
app = ApiResolver(switched_on=lambda: get_settings().chat_on)


@app.post(
    "/api/v1/sessions/<session_id>/chat/stop",
    summary="Stop the reply being made (a streamed reply stops and is stored as far as it got)",
    tags=["chat"],
    security=docs.JWT_AUTH,
    responses=docs.responses(
        200,
        StopReplyOut,
        "`stopping`: whether a reply was being made (it stops within a second).",
        401,
        404,
    ),
)
@tracer.capture_method
def stop(session_id: str) -> Response[str]:
    return app.reply(stop_reply(session_id, app.caller))


lambda_handler = api_handler(app)
