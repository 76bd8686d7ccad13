"""POST, GET /api/v1/sessions/{session_id}/shares and DELETE .../shares/{share_id}: a session's share
links, made, listed and revoked (ShareLinksFunction). AllowSharing=false: 404, as routes that do not
exist."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.core.settings import get_settings
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.share_links import create_share, list_shares, revoke_share
from chatvault.models.api import RevokedShareOut, ShareListOut, ShareOut

app = ApiResolver(switched_on=lambda: get_settings().allow_sharing)
SHARES = "/api/v1/sessions/<session_id>/shares"


@app.post(
    SHARES,
    summary="Share the conversation as it is now: a read-only snapshot behind an unguessable link",
    description=(
        "Later messages never appear in it. The link lives ShareHours (168 by default), never beyond"
        " the conversation's retention, until it is revoked; the panic button, erase-all and expiry"
        " revoke every link of the session. Read it with GET /api/v1/shared/{share_id}, no credentials."
        " A session may make SHARE_LIMIT_PER_HOUR links an hour (20 by default; 429 beyond)."
    ),
    tags=["shares"],
    security=docs.JWT_AUTH,
    responses=docs.responses(201, ShareOut, "The link.", 401, 404, 429),
)
@tracer.capture_method
def create(session_id: str) -> Response[str]:
    return app.reply(create_share(session_id, app.caller), status=201)


@app.get(
    SHARES,
    summary="The session's share links that have not expired or been revoked, oldest first",
    tags=["shares"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, ShareListOut, "A page of links.", 400, 401, 404, 422),
)
@tracer.capture_method
def list_(session_id: str, limit: docs.PageLimit = 50, cursor: docs.PageCursor = None) -> Response[str]:
    return app.reply(list_shares(session_id, app.caller, limit, cursor))


@app.delete(
    SHARES + "/<share_id>",
    summary="Revoke a share link: from now on it is 404",
    tags=["shares"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, RevokedShareOut, "The link, revoked.", 401, 404),
)
@tracer.capture_method
def revoke(session_id: str, share_id: str) -> Response[str]:
    return app.reply(revoke_share(session_id, share_id, app.caller))


lambda_handler = api_handler(app)
