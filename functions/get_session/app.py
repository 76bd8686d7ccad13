"""GET /api/v1/sessions/{session_id}: read one session (GetSessionFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.get_session import get_session
from chatvault.models.api import SessionOut

app = ApiResolver()


@app.get(
    "/api/v1/sessions/<session_id>",
    summary="Read a session",
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, SessionOut, "The session.", 401, 404),
)
@app.get(
    "/api/v1/service/sessions/<session_id>",
    summary="Read a session (the bot's back end, IAM)",
    tags=["service"],
    security=docs.SIGV4_AUTH,
    responses=docs.service_responses(200, SessionOut, "The session.", 404),
)
@tracer.capture_method
def get(session_id: str) -> Response[str]:
    return app.reply(get_session(session_id, app.caller))


lambda_handler = api_handler(app)
