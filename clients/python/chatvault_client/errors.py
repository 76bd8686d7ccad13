"""Typed errors: every answer of 400 and above is an ApiError carrying the service's `error.code`
(and its subclass by status, so callers can catch a kind without comparing strings).

Every error also says how many requests the call made (`attempts`, its retries included) and, when a
chat without a session (start_chat) created one before it failed, carries that session (`session`,
with its `session_token` in anonymous mode: the only time the service sends it) and the stored user
message (`user_message`, when the service reported it), so that the chat can be retried on it. An error
of a chat call (chat, start_chat, chat_stream, start_chat_stream) carries the chat's `message_id`: a
repeat with it completes the pair, and stores nothing twice.

A streamed chat's `error` event has the error body but no HTTP status: `error_of_event` gives it the
status the service answers its code with (ERROR_STATUS), so it is the same ApiError subclass the JSON
form raises. One code has two: `model_unavailable` is 503 (the model busy or unavailable) or 502 (it
could not be used: an operator's matter); from an event it is taken as 503, UnavailableError. An event
has no Retry-After either: `retry_after` is None."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from chatvault_client.models import CreatedSession, ErrorBody, ErrorDetail, Message


class ChatVaultClientError(Exception):
    """Base of everything this client raises."""

    attempts: int = 0  # the requests this call made before giving up (1: no retry)
    session: CreatedSession | None = None  # start_chat: the session it created (keep its token)
    user_message: Message | None = None  # start_chat: the user message, when known to be stored
    message_id: str | None = None  # a chat call's message_id: a repeat with it completes the pair


class TransportError(ChatVaultClientError):
    """The service could not be reached (after the retries)."""


class ApiError(ChatVaultClientError):
    status: int = 0

    def __init__(self, status: int, error: ErrorBody) -> None:
        super().__init__(f"{status} {error.code}: {error.message}")
        self.status = status
        self.code = error.code
        self.message = error.message
        self.request_id = error.request_id
        self.details: list[ErrorDetail] = list(error.details or [])
        self.retry_after: float | None = None  # the answer's Retry-After, in seconds


class BadRequestError(ApiError): ...  # 400: invalid_json, invalid_cursor


class UnauthorizedError(ApiError): ...  # 401: token_required, unauthenticated


class ForbiddenError(ApiError): ...  # 403: role_not_allowed; a bad SigV4 signature


class NotFoundError(ApiError): ...  # 404: session_not_found, not_found


# 409: session_exists, session_ended, session_full, message_id_conflict, session_owned,
# session_temporary; reply_in_progress (a chat: retried first)
class ConflictError(ApiError): ...


class TooLargeError(ApiError): ...  # 413: payload_too_large, message_too_large


class ValidationError(ApiError): ...  # 422: validation_failed (see .details)


class RateLimitedError(ApiError): ...  # 429: rate_limited (retried first, honouring Retry-After)


# 502: model_unavailable (the model could not be used); API Gateway's own when a function failed.
# A chat: retried first.
class BadGatewayError(ApiError): ...


class UnavailableError(ApiError): ...  # 503: service_unavailable, model_unavailable (retried first)


# 504: model_timeout; API Gateway's own when a function did not answer in time. A chat: retried first.
class GatewayTimeoutError(ApiError): ...


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    502: BadGatewayError,
    503: UnavailableError,
    504: GatewayTimeoutError,
}


# The status the service answers each error code with (chatvault/http/errors.py); model_unavailable is
# 503 or 502 there (see the module's docstring)
ERROR_STATUS: dict[str, int] = {
    "invalid_json": 400,
    "invalid_cursor": 400,
    "token_required": 401,
    "unauthenticated": 401,
    "role_not_allowed": 403,
    "forbidden": 403,
    "session_not_found": 404,
    "upload_not_found": 404,
    "message_not_found": 404,
    "share_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "session_exists": 409,
    "session_owned": 409,
    "session_temporary": 409,
    "session_ended": 409,
    "session_full": 409,
    "message_id_conflict": 409,
    "reply_in_progress": 409,
    "reply_stopped": 409,
    "payload_too_large": 413,
    "message_too_large": 413,
    "validation_failed": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "model_unavailable": 503,
    "service_unavailable": 503,
    "model_timeout": 504,
}


def error_of_event(body: object) -> ApiError:
    """The error of a streamed chat's `error` event (its data: the usual error body, with the `status` and
    `retry_after` the JSON form would answer; without them, the status of its code, an unknown code
    500)."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    status = body.get("status") if isinstance(body, dict) else None  # what the JSON form would answer
    if not isinstance(status, int):
        status = ERROR_STATUS.get(str(code), 500)
    retry_after = body.get("retry_after") if isinstance(body, dict) else None
    return error_of(status, body, str(retry_after) if retry_after is not None else None)


def error_of(status: int, body: object, retry_after: str | None = None) -> ApiError:
    """The error for an answer; API Gateway's own answers (`{"message": ...}`, e.g. a 403 for a bad
    signature) get a code of their own. A chat that created its session and then failed has the
    session (and the stored user message) beside `error`: they ride on the error."""
    started: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = ErrorBody.model_validate(body["error"])
        started = body
    else:
        text = body.get("message") if isinstance(body, dict) else None
        error = ErrorBody(code=f"http_{status}", message=str(text or "No error body."), request_id="")
    raised = BY_STATUS.get(status, ApiError)(status, error)
    if isinstance(started.get("session"), dict):
        raised.session = CreatedSession.model_validate(started["session"])
    if isinstance(started.get("message"), dict):
        raised.user_message = Message.model_validate(started["message"])
    with suppress(ValueError):  # an HTTP date, or nonsense: the client's own backoff
        raised.retry_after = float(retry_after) if retry_after is not None else None
    return raised
