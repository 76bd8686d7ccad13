"""POST /api/v1/sessions: create a session (CreateSessionFunction)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core.observability import CORRELATION_PATH, logger, metrics, tracer
from chatvault.http import docs
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


@logger.inject_lambda_context(correlation_id_path=CORRELATION_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
