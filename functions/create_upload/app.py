"""POST /api/v1/sessions/{session_id}/uploads: a presigned S3 POST (CreateUploadFunction)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from chatvault.core.observability import tracer
from chatvault.http import docs
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver
from chatvault.logic.create_upload import create_upload
from chatvault.models.api import CreateUploadRequest, UploadOut

app = ApiResolver()


@app.post(
    "/api/v1/sessions/<session_id>/uploads",
    summary="A presigned S3 POST for one file in the session's folder",
    tags=["uploads"],
    security=docs.JWT_AUTH,
    responses=docs.responses(
        201, UploadOut, "The form to POST the file to S3 with.", 400, 401, 404, 409, 422, 429
    ),
)
@tracer.capture_method
def upload(session_id: str, body: Annotated[CreateUploadRequest, Body()]) -> Response[str]:
    return app.reply(create_upload(session_id, body, app.caller), status=201)


lambda_handler = api_handler(app)
