"""GET /api/v1/sessions/{session_id}/uploads: the session's uploads (ListUploadsFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.list_uploads import list_uploads
from chatvault.models.api import UploadInfoListOut

app = ApiResolver()


@app.get(
    "/api/v1/sessions/<session_id>/uploads",
    summary="A page of the session's uploads: pending until the file is in storage, stored after",
    description="File names are never stored, so none is listed.",
    tags=["uploads"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, UploadInfoListOut, "A page of uploads.", 400, 401, 404, 422),
)
@tracer.capture_method
def list_(session_id: str, limit: docs.PageLimit = 50, cursor: docs.PageCursor = None) -> Response[str]:
    return app.reply(list_uploads(session_id, app.caller, limit, cursor))


lambda_handler = api_handler(app)
