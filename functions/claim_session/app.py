"""POST /api/v1/sessions/{session_id}/claim: an anonymous session becomes the signed-in user's
(AuthMode=both; ClaimSessionFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.claim_session import claim_session
from chatvault.models.api import SessionOut

app = ApiResolver()


@app.post(
    "/api/v1/sessions/<session_id>/claim",
    summary="Make an anonymous session the signed-in user's (AuthMode=both; needs its token and a JWT)",
    description=(
        "AuthMode=both only (404 elsewhere). Send the session token header and a bearer token: the "
        "session becomes the JWT subject's, its token stops working at once, and it lists under GET "
        "/api/v1/sessions. Idempotent for its new owner; 409 `session_owned` if another user has it, "
        "`session_temporary` for a temporary conversation (it belongs to no account)."
    ),
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, SessionOut, "The session, now the caller's.", 401, 404, 409),
)
@tracer.capture_method
def claim(session_id: str) -> Response[str]:
    return app.reply(claim_session(session_id, app.caller))


lambda_handler = api_handler(app)
