"""chatvault_client: a typed client of the chatvault sessions API for chatbot back ends."""

from chatvault_client.auth import Auth, BearerAuth, IamAuth, NoAuth, SessionTokenAuth
from chatvault_client.client import ChatVault
from chatvault_client.errors import (
    ApiError,
    BadRequestError,
    ChatVaultClientError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from chatvault_client.models import (
    CreatedSession,
    DeleteReceipt,
    Message,
    MessageMetadata,
    Role,
    Session,
    Upload,
)

__all__ = [
    "ApiError",
    "Auth",
    "BadRequestError",
    "BearerAuth",
    "ChatVault",
    "ChatVaultClientError",
    "ConflictError",
    "CreatedSession",
    "DeleteReceipt",
    "ForbiddenError",
    "IamAuth",
    "Message",
    "MessageMetadata",
    "NoAuth",
    "NotFoundError",
    "RateLimitedError",
    "Role",
    "Session",
    "SessionTokenAuth",
    "TooLargeError",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "Upload",
    "ValidationError",
]
