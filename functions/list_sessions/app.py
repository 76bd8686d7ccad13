"""GET /api/v1/sessions: the caller's sessions, jwt mode only (ListSessionsFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.list_sessions import list_sessions
from chatvault.models.api import SessionListOut

app = ApiResolver()


@app.get(
    "/api/v1/sessions",
    summary="List your sessions, newest activity first (jwt mode; 404 in anonymous mode)",
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, SessionListOut, "A page of sessions.", 400, 401, 404, 422),
)
@tracer.capture_method
def list_(limit: docs.PageLimit = 50, cursor: docs.PageCursor = None) -> Response[str]:
    return app.reply(list_sessions(app.caller, limit, cursor))


lambda_handler = api_handler(app)
