"""GET /api/v1/sessions/{session_id}/uploads/{upload_id}: one stored upload and a download link
(GetUploadFunction)."""

from aws_lambda_powertools.event_handler import Response

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.get_upload import get_upload
from chatvault.models.api import UploadDownloadOut

app = ApiResolver()


@app.get(
    "/api/v1/sessions/<session_id>/uploads/<upload_id>",
    summary="A stored upload, with a presigned GET of its file (valid 5 minutes)",
    description=(
        "404 `upload_not_found` while the file has not reached storage (status pending), and for an "
        "upload that does not exist."
    ),
    tags=["uploads"],
    security=docs.JWT_AUTH,
    responses=docs.responses(200, UploadDownloadOut, "The upload and its download link.", 401, 404),
)
@tracer.capture_method
def get(session_id: str, upload_id: str) -> Response[str]:
    return app.reply(get_upload(session_id, upload_id, app.caller))


lambda_handler = api_handler(app)
