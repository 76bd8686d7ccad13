"""Typed errors: every answer of 400 and above is an ApiError carrying the service's `error.code`
(and its subclass by status, so callers can catch a kind without comparing strings)."""

from __future__ import annotations

from chatvault_client.models import ErrorBody, ErrorDetail


class ChatVaultClientError(Exception):
    """Base of everything this client raises."""


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


class BadRequestError(ApiError): ...  # 400: invalid_json, invalid_cursor


class UnauthorizedError(ApiError): ...  # 401: token_required, unauthenticated


class ForbiddenError(ApiError): ...  # 403: role_not_allowed; a bad SigV4 signature


class NotFoundError(ApiError): ...  # 404: session_not_found, not_found


class ConflictError(ApiError): ...  # 409: session_exists, session_ended, message_id_conflict, session_owned


class TooLargeError(ApiError): ...  # 413: payload_too_large, message_too_large


class ValidationError(ApiError): ...  # 422: validation_failed (see .details)


class RateLimitedError(ApiError): ...  # 429: rate_limited (retried first, honouring Retry-After)


class UnavailableError(ApiError): ...  # 503: service_unavailable (retried first)


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    422: ValidationError,
    429: RateLimitedError,
    503: UnavailableError,
}


def error_of(status: int, body: object) -> ApiError:
    """The error for an answer; API Gateway's own answers (`{"message": ...}`, e.g. a 403 for a bad
    signature) get a code of their own."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = ErrorBody.model_validate(body["error"])
    else:
        text = body.get("message") if isinstance(body, dict) else None
        error = ErrorBody(code=f"http_{status}", message=str(text or "No error body."), request_id="")
    return BY_STATUS.get(status, ApiError)(status, error)
