"""The only place where errors become HTTP responses: by exception type, never by message text.
Every error body is `{"error": {"code", "message", "request_id"[, "details"]}}`."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from chatvault.core import errors as e

# exception type -> (status, code). Order matters only for subclasses (none today).
ERROR_MAP: dict[type[e.ChatVaultError], tuple[int, str]] = {
    e.InvalidJsonError: (400, "invalid_json"),
    e.InvalidCursorError: (400, "invalid_cursor"),
    e.TokenRequiredError: (401, "token_required"),
    e.UnauthenticatedError: (401, "unauthenticated"),
    e.RoleNotAllowedError: (403, "role_not_allowed"),
    e.ServiceCallerRequiredError: (403, "forbidden"),
    e.SessionNotFoundError: (404, "session_not_found"),
    e.UploadNotFoundError: (404, "upload_not_found"),
    e.MessageNotFoundError: (404, "message_not_found"),
    e.ShareNotFoundError: (404, "share_not_found"),
    e.RouteNotFoundError: (404, "not_found"),
    e.MethodNotAllowedError: (405, "method_not_allowed"),
    e.SessionExistsError: (409, "session_exists"),
    e.SessionOwnedError: (409, "session_owned"),
    e.SessionTemporaryError: (409, "session_temporary"),
    e.SessionEndedError: (409, "session_ended"),
    e.SessionFullError: (409, "session_full"),
    e.MessageIdConflictError: (409, "message_id_conflict"),
    e.ReplyInProgressError: (409, "reply_in_progress"),
    e.ReplyStoppedError: (409, "reply_stopped"),
    e.PayloadTooLargeError: (413, "payload_too_large"),
    e.MessageTooLargeError: (413, "message_too_large"),
    e.ValidationFailedError: (422, "validation_failed"),
    e.RateLimitedError: (429, "rate_limited"),
    e.ModelFailedError: (502, "model_unavailable"),
    e.StorageUnavailableError: (503, "service_unavailable"),
    e.ModelBusyError: (503, "model_unavailable"),
    e.ModelTimeoutError: (504, "model_timeout"),
}

RETRY_AFTER_SECONDS = "1"
# Responses carry private data (tokens, conversations): no cache may keep them.
PRIVATE_HEADERS = {"Cache-Control": "no-store"}


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    beside: dict[str, Any] | None = None,
) -> Response[str]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": body, **(beside or {})}, separators=(",", ":")),
        headers={**PRIVATE_HEADERS, **(headers or {})},
    )


def from_domain(exc: e.ChatVaultError, request_id: str) -> Response[str]:
    beside: dict[str, Any] | None = None
    if isinstance(exc, e.ChatStartedError):  # the failure's answer, beside it what was created
        beside = exc.started
        exc = exc.cause
    status, code = ERROR_MAP[type(exc)]
    headers: dict[str, str] = {}
    if isinstance(exc, e.MethodNotAllowedError):
        headers["Allow"] = ", ".join(exc.allowed)
    if isinstance(exc, e.StorageUnavailableError):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if isinstance(exc, e.RateLimitedError | e.ModelBusyError):
        headers["Retry-After"] = str(exc.retry_after)
    details = exc.details if isinstance(exc, e.ValidationFailedError) else None
    return error_response(
        status, code, exc.message, request_id, details=details, headers=headers, beside=beside
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) if parts else "body"


def _at_the_field(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A wrong value of an optional field (`X | None`) fails both branches of its union, and pydantic
    reports one error for each, its loc naming the branch ("none", "function-before[...]"). The client
    gets the value's own error, at the field's name: the None branch's is dropped, the tag cut out."""
    nones = {
        tuple(err["loc"][:-1])
        for err in errors
        if err.get("type") == "none_required" and tuple(err.get("loc", ()))[-1:] == ("none",)
    }
    # a union's: another branch of the same field failed too (else the None error is the only word)
    optional = {
        field
        for field in nones
        if any(
            tuple(err.get("loc", ()))[: len(field)] == field and err.get("type") != "none_required"
            for err in errors
        )
    }
    kept = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "none_required" and loc[:-1] in optional:
            continue
        field = next((f for f in optional if loc[: len(f)] == f and len(loc) > len(f)), None)
        kept.append({**err, "loc": field + loc[len(field) + 1 :]} if field else err)
    return kept


def from_validation(errors: list[dict[str, Any]], request_id: str) -> Response[str]:
    """Pydantic/Powertools validation errors: malformed JSON is 400, everything else 422 with details."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return from_domain(e.InvalidJsonError(), request_id)
    details = [
        {
            "field": _field(err.get("loc", ())),
            "problem": str(err.get("msg", "is not valid")).removeprefix("Value error, "),
        }
        for err in _at_the_field(errors)
    ]
    return error_response(
        422, "validation_failed", "The request is not valid; see details.", request_id, details=details
    )


def internal(request_id: str) -> Response[str]:
    return error_response(500, "internal_error", "Something went wrong on our side.", request_id)
