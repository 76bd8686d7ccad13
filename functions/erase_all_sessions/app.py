"""DELETE /api/v1/sessions: erase every session of the signed-in caller (EraseAllSessionsFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.erase_all_sessions import erase_all_sessions
from chatvault.models.api import EraseAllReceiptOut

app = ApiResolver()


@app.delete(
    "/api/v1/sessions",
    summary="Erase all my sessions, permanently (signed-in users; 404 in anonymous mode)",
    description=(
        "The panic button for every session of the caller: each is unreadable at once, then erased "
        "with its messages, files and exports. Safe to retry: a 503 (out of time) leaves the rest "
        "unreadable and a retry, or the next sweep, finishes it."
    ),
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, EraseAllReceiptOut, "What was erased.", 401, 404),
)
@tracer.capture_method
def erase_all() -> Response[str]:
    return app.reply(erase_all_sessions(app.caller))


lambda_handler = api_handler(app)
