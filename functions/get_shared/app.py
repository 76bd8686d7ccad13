"""GET /api/v1/shared/{share_id}: a shared conversation, read-only, without credentials
(GetSharedFunction). AllowSharing=false: 404, as a route that does not exist."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.core.settings import get_settings
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.get_shared import SHARED_HEADERS, get_shared
from chatvault.models.api import SharedConversationOut

app = ApiResolver(switched_on=lambda: get_settings().allow_sharing)


@app.get(
    "/api/v1/shared/<share_id>",
    summary="A shared conversation: its title and the messages it held when shared, in pages",
    description=(
        "No credentials: the link is the capability. An unknown, revoked or expired link, and one"
        " whose conversation was erased or has expired, are the same 404 `share_not_found`. Answers"
        " carry `Cache-Control: no-store` and `Referrer-Policy: no-referrer`."
    ),
    tags=["shares"],
    responses=docs.responses(200, SharedConversationOut, "A page of the shared conversation.", 400, 404, 422),
)
@tracer.capture_method
def get(share_id: str, limit: docs.PageLimit = 50, cursor: docs.PageCursor = None) -> Response[str]:
    return app.reply(get_shared(share_id, limit, cursor), headers=SHARED_HEADERS)


lambda_handler = api_handler(app)
