"""GET /api/v1/sessions/{session_id}/export: the whole conversation (ExportSessionFunction)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.errors import PRIVATE_HEADERS
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.export_session import export_session
from chatvault.models.api import ExportLinkOut, SessionExportOut

app = ApiResolver()
_SUCCESS = docs.responses(200, SessionExportOut, "", 401, 404, 422, 429)
_SUCCESS[200] = {
    "description": (
        "The export: JSON in the format `chatvault.export/1` (SessionExportOut), or with "
        "`format=markdown` a `text/markdown` transcript. Beyond what one response carries, "
        "`{download_url, expires_at, encryption}` (ExportLinkOut): a link, valid 15 minutes, to the "
        "export object, which is deleted within the hour. The object is sealed "
        "(`chatvault.export.sealed/1`: 1 MiB chunks, each `nonce | ciphertext | tag` under AES-256-GCM, "
        "docs/API.md) under the key in `encryption`, which this answer alone carries."
    ),
    "content": {
        "application/json": {"model": SessionExportOut | ExportLinkOut},
        "text/markdown": {"schema": {"type": "string"}},
    },
}


@app.get(
    "/api/v1/sessions/<session_id>/export",
    summary="Export the whole conversation (JSON that an import reads back, or a Markdown transcript)",
    tags=["sessions"],
    security=docs.JWT_AUTH,
    responses=_SUCCESS,
)
@tracer.capture_method
def export(
    session_id: str,
    format: Annotated[
        Literal["json", "markdown"], Query(description="`json` (default) or `markdown`.")
    ] = "json",
) -> Response[str]:
    result = export_session(session_id, app.caller, format)
    if result.link is not None:
        return app.reply(result.link)
    return Response(200, result.content_type, result.body, headers=dict(PRIVATE_HEADERS))


lambda_handler = api_handler(app)
