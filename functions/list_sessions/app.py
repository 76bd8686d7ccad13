"""GET /api/v1/sessions: the caller's sessions, jwt mode only (ListSessionsFunction)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatvault.core.observability import CORRELATION_PATH, logger, metrics, tracer
from chatvault.http import docs
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
def list_(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response[str]:
    return app.reply(list_sessions(app.caller, limit, cursor))


@logger.inject_lambda_context(correlation_id_path=CORRELATION_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
