"""GET /api/v1/sessions/{session_id}: read one session (GetSessionFunction)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core.observability import CORRELATION_PATH, logger, metrics, tracer
from chatvault.http import docs
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


@logger.inject_lambda_context(correlation_id_path=CORRELATION_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
