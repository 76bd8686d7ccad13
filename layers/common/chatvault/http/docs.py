"""What each route documents in the OpenAPI document (GET /api/v1/openapi.json): its success body and
every error status it can really answer, all with the one error body of http/errors.py."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from chatvault.models.api import ErrorOut, ForbiddenOut

# Plain OpenAPI objects (Powertools validates them only when a document is generated): importing its
# OpenAPI models here would cost every cold start a third of a second.
SECURITY_SCHEMES: dict[str, Any] = {
    "BearerJWT": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "AuthMode=jwt: verified by API Gateway's JWT authorizer; AuthMode=both: optional, verified by "
            "the function against the issuer's keys (a request without one is judged by its "
            "X-Session-Token). The principal is `sub`."
        ),
    },
    "SigV4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": (
            "The service writer (the chatbot's back end): AWS Signature Version 4 for service "
            "`execute-api`, by a principal allowed `execute-api:Invoke` on /api/v1/service/* (the stack "
            "output ServiceWriterPolicyArn). A missing or bad signature is API Gateway's 403."
        ),
    },
}
# The session token is a header parameter of every route under /sessions/{session_id} (infra/openapi.py
# adds it), not a security scheme: a security scheme promises 401/403 for bad credentials, while a
# wrong token is 404 here, the same answer as for a session that does not exist, so that nobody learns
# which ids exist. The served document makes it required in anonymous mode and drops it in jwt mode.
SESSION_TOKEN_HEADER = "X-Session-Token"  # noqa: S105 - a header name, not a secret
SESSION_TOKEN_PARAMETER: dict[str, Any] = {
    "name": SESSION_TOKEN_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1},
    "description": (
        "AuthMode=anonymous (required there): the session_token returned once by POST /api/v1/sessions. "
        "Missing: 401 `token_required`. Wrong: 404 `session_not_found`, as for a session that does not "
        "exist."
    ),
}
# Every route but the document's needs the bearer token in jwt mode; in anonymous mode the gateway asks
# for nothing (the served document drops it: http/api_document.py).
JWT_AUTH: list[dict[str, list[str]]] = [{"BearerJWT": []}]
SIGV4_AUTH: list[dict[str, list[str]]] = [{"SigV4": []}]

_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
}
_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed JSON (`invalid_json`) or a cursor this service did not issue (`invalid_cursor`).", {}),
    401: (
        "No credentials: `token_required` (no session token header) or `unauthenticated` (no valid bearer "
        "token where one is needed, or an invalid one in both mode).",
        {},
    ),
    403: (
        "`role_not_allowed`: a role outside ClientRoles from an end user's credentials; on the service "
        "routes, API Gateway's own 403 for a missing or bad signature.",
        {},
    ),
    404: (
        "`session_not_found`: no such session, not yours, expired, being erased, or a non-UUID id; "
        "`not_found`: no such route; `upload_not_found`: no such upload, or its file has not arrived;"
        " `message_not_found`: no such message (feedback); `share_not_found`: no such share link (or"
        " revoked, expired, its conversation gone).",
        {},
    ),
    409: (
        "`session_exists`, `session_ended`, `session_full`, `message_id_conflict`, `session_owned`, "
        "`session_temporary` (a claim of a temporary conversation) or `reply_in_progress` (the chat "
        "routes: another reply of the session is being made).",
        {},
    ),
    413: ("`payload_too_large` (request body) or `message_too_large` (content over MaxMessageChars).", {}),
    422: ("`validation_failed`, with `details: [{field, problem}]`.", {}),
    429: (
        "`rate_limited`: a limit of this client (a minute) or session (a minute, an hour); see Retry-After.",
        _RETRY_AFTER,
    ),
    502: (
        "`model_unavailable`: the model could not be used (no access to it, a bad ModelId or guardrail, a "
        "model error); the message says what the operator can do. The user message stays stored: a retry "
        "with its `message_id` completes the pair.",
        {},
    ),
    503: (
        "`service_unavailable`: storage throttled or failing after retries; nothing was written. On the chat "
        "routes also `model_unavailable`: the model was throttled or unavailable; the user message stays "
        "stored, and a retry with its `message_id` completes the pair.",
        _RETRY_AFTER,
    ),
    504: (
        "`model_timeout` (the chat routes): the model did not answer in time; the user message stays "
        "stored, and a retry with its `message_id` completes the pair.",
        {},
    ),
}


def service_responses(status: int, model: type[BaseModel], description: str, *errors: int) -> dict[int, Any]:
    """`responses` for a service writer's route: its 403 is API Gateway's answer to a bad signature
    (`{"message": "Forbidden"}`), or the service's own error body."""
    documented = responses(status, model, description, 403, *errors)
    documented[403] = {
        "description": 'A missing or bad SigV4 signature (API Gateway\'s own answer, `{"message": '
        '"Forbidden"}`), or a route reached without IAM authorization (`forbidden`).',
        "content": {"application/json": {"model": ForbiddenOut}},
    }
    return documented


def responses(status: int, model: type[BaseModel], description: str, *errors: int) -> dict[int, Any]:
    """The success response and the listed error responses (503 and 413 apply to every route)."""
    documented: dict[int, Any] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for code in sorted({*errors, 413, 503}):
        text, headers = _ERRORS[code]
        documented[code] = {"description": text, "content": {"application/json": {"model": ErrorOut}}}
        if headers:
            documented[code]["headers"] = headers
    return documented


# The page parameters of every list route
PageLimit = Annotated[int, Query(ge=1, le=100)]
PageCursor = Annotated[str | None, Query(min_length=1, description="`next_cursor` of the previous page.")]
