"""Domain errors. The HTTP layer maps them to status codes in exactly one place (http/errors.py)."""

from __future__ import annotations

from typing import Any


class ChatVaultError(Exception):
    """Base of every error the logic raises on purpose. The message is one human sentence."""

    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class SessionNotFoundError(ChatVaultError):
    default_message = "The session does not exist."


class TokenRequiredError(ChatVaultError):
    default_message = "This call needs the session's X-Session-Token header."


class UnauthenticatedError(ChatVaultError):
    default_message = "This call needs a valid bearer token."


class RoleNotAllowedError(ChatVaultError):
    default_message = "This role may not be written with these credentials; the bot's back end writes it."


class ServiceCallerRequiredError(ChatVaultError):
    """A service route reached without API Gateway's IAM authorization (a misrouted request)."""

    default_message = "This route needs an AWS Signature Version 4 signed request."


class SessionOwnedError(ChatVaultError):
    default_message = "The session already belongs to a signed-in user."


class SessionTemporaryError(ChatVaultError):
    default_message = "A temporary conversation cannot be claimed: it belongs to no account."


class SessionExistsError(ChatVaultError):
    default_message = "A session with this id already exists."


class SessionEndedError(ChatVaultError):
    default_message = "The session has ended and is read-only."


class SessionFullError(ChatVaultError):
    default_message = "The session holds as many messages as a session may (MaxSessionMessages)."


class RouteNotFoundError(ChatVaultError):
    default_message = "There is no such route."


class MethodNotAllowedError(ChatVaultError):
    default_message = "This method is not allowed on this route."

    def __init__(self, allowed: list[str], message: str | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed


class MessageTooLargeError(ChatVaultError):
    default_message = "The message content is longer than this service accepts."


class MessageIdConflictError(ChatVaultError):
    default_message = "This message_id was already used for a different message."


class PayloadTooLargeError(ChatVaultError):
    default_message = "The request body is larger than this service accepts."


class InvalidJsonError(ChatVaultError):
    default_message = "The request body is not valid JSON."


class InvalidCursorError(ChatVaultError):
    default_message = "The cursor is not one this service issued."


class ValidationFailedError(ChatVaultError):
    """A semantic check the request models cannot express (details name the field)."""

    default_message = "The request is not valid."

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"The request is not valid: {field}: {problem}.")
        self.details = [{"field": field, "problem": problem}]


class RateLimitedError(ChatVaultError):
    default_message = "Too many requests of this kind from this client; retry later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailableError(ChatVaultError):
    """DynamoDB or S3 kept failing (throttling, 5xx) after the retries this call could afford."""

    default_message = "The service is briefly unavailable; retry shortly."


class ReplyInProgressError(ChatVaultError):
    default_message = "A reply in this session is still being made; send again when it is stored."


class ReplyStoppedError(ChatVaultError):
    default_message = (
        "The reply was stopped before the model wrote anything; nothing was stored. Send the message "
        "again (the same message_id) for a reply."
    )


class ModelBusyError(ChatVaultError):
    """The model was throttled or unavailable (503 with Retry-After). The user message stays stored; a
    retry with its message_id asks the model again."""

    default_message = "The model is busy or unavailable; retry shortly with the same message_id."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelTimeoutError(ChatVaultError):
    default_message = "The model did not answer in time; retry with the same message_id."


class ModelFailedError(ChatVaultError):
    """The model could not be used: no access to it, a bad model configuration, or a model error (502).
    The message says what an operator can do; the cause is logged."""

    default_message = "The model could not be used; the operator should check the chat function's logs."


class ChatStartedError(ChatVaultError):
    """A chat without a session that created one, then failed: the failure's own answer, carrying the
    new session (with its token: the only time it is sent) and the stored user message, if any, so
    that the client can retry on the session's chat route with the same message_id."""

    def __init__(self, cause: ChatVaultError, started: dict[str, Any]) -> None:
        super().__init__(cause.message)
        self.cause = cause
        self.started = started


class MessageNotFoundError(ChatVaultError):
    default_message = "The session holds no message with this id."


class ShareNotFoundError(ChatVaultError):
    """Unknown, revoked, expired, or its conversation gone: one answer for all (a link's holder learns
    nothing more)."""

    default_message = "There is no shared conversation at this link."


class UploadNotFoundError(ChatVaultError):
    default_message = "The upload does not exist, or its file has not reached storage yet."
