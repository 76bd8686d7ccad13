"""POST /api/v1/sessions: create a session (CreateSessionFunction)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.create_session import create_session
from chatvault.models.api import CreatedSessionOut, CreateSessionRequest

app = ApiResolver()


@app.post(
    "/api/v1/sessions",
    summary="Create a session",
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(
        201,
        CreatedSessionOut,
        "The new session; `session_token` (anonymous mode) only now.",
        400,
        401,
        409,
        422,
        429,
    ),
)
@tracer.capture_method
def create(body: Annotated[CreateSessionRequest, Body()] = CreateSessionRequest()) -> Response[str]:  # noqa: B008
    return app.reply(create_session(body, app.caller), status=201)


lambda_handler = api_handler(app)
