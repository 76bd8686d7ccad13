"""DELETE /api/v1/sessions/{session_id}: the panic button (DeleteSessionFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.delete_session import delete_session
from chatvault.models.api import DeleteReceiptOut

app = ApiResolver()


@app.delete(
    "/api/v1/sessions/<session_id>",
    summary="The panic button: erase the session, its messages and its files, permanently",
    description=(
        "Safe to retry. Afterwards every call on the session is 404, a second DELETE included. A session "
        "that has expired (404 to every read) but that DynamoDB's TTL has not removed yet is erased at "
        "once too: 200 with the receipt."
    ),
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, DeleteReceiptOut, "What was erased.", 401, 404),
)
@tracer.capture_method
def delete(session_id: str) -> Response[str]:
    return app.reply(delete_session(session_id, app.caller))


lambda_handler = api_handler(app)
