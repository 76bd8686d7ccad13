"""GET /api/v1/openapi.json: the API's OpenAPI document (GetApiDocumentFunction)."""

from aws_lambda_powertools.event_handler import Response, content_types

from chatvault.http.api_document import api_document
from chatvault.http.handler import api_handler
from chatvault.http.resolver import ApiResolver

app = ApiResolver()


@app.get(
    "/api/v1/openapi.json",
    summary="This document",
    tags=["meta"],
    responses={
        200: {
            "description": "The OpenAPI 3.1 document of this deployment.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    enable_validation=False,  # no input to validate, so no 422 to document
)
def document() -> Response[str]:
    return Response(
        200, content_types.APPLICATION_JSON, api_document(), headers={"Cache-Control": "max-age=300"}
    )


lambda_handler = api_handler(app, measured=False)
