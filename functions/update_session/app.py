"""PATCH /api/v1/sessions/{session_id}: title, metadata, end (UpdateSessionFunction)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.update_session import update_session
from chatvault.models.api import SessionOut, UpdateSessionRequest

app = ApiResolver()


@app.patch(
    "/api/v1/sessions/<session_id>",
    summary="Change title, metadata or retention (applied at once), or end the session (one way)",
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, SessionOut, "The changed session.", 400, 401, 404, 409, 422, 429),
)
@tracer.capture_method
def update(session_id: str, body: Annotated[UpdateSessionRequest, Body()]) -> Response[str]:
    return app.reply(update_session(session_id, body, app.caller))


lambda_handler = api_handler(app)
