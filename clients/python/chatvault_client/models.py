"""The API's bodies as pydantic models. Field for field the OpenAPI document's schemas (the name in
each docstring); a test checks them against the document the service serves, so they cannot drift.
Answers are read leniently (a field a newer service adds is ignored); requests are strict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Role = Literal["user", "assistant", "system", "tool"]


def contract_time(moment: datetime) -> str:
    """A time in the contract's form: ISO-8601 UTC with milliseconds and `Z`, `2026-11-22T10:04:05.123Z`
    (pydantic's own JSON would have microseconds, `.123000Z`, and no fraction on a whole second)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# A datetime in Python; in JSON (model_dump_json, model_dump(mode="json")) the contract's form.
Timestamp = Annotated[datetime, PlainSerializer(contract_time, return_type=str, when_used="json")]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageMetadata(BaseModel):
    """MessageMetadata"""

    model_config = ConfigDict(extra="forbid")

    tools_used: list[str] | None = None
    processing_time_ms: int | None = None
    token_count: int | None = None
    model: str | None = None
    has_error: bool | None = None
    error_message: str | None = None
    attributes: dict[str, str] | None = None


class Session(_Answer):
    """SessionOut"""

    session_id: str
    title: str | None
    metadata: dict[str, str]
    status: Literal["active", "ended"]
    created_at: Timestamp
    updated_at: Timestamp
    last_message_at: Timestamp | None
    message_count: int
    preview: str | None
    expires_at: Timestamp
    temporary: bool = False  # a temporary conversation: unlisted, never claimed, kept briefly
    # how long it is kept after its last activity, in hours (each message: after it was written);
    # None only from a service older than retention per conversation
    retention_hours: int | None = None
    replying: bool = False  # a reply of the chat is being made now; it will appear in the history


class CreatedSession(Session):
    """CreatedSessionOut: the session token is here once (anonymous sessions), never again."""

    session_token: str | None = None


class Feedback(_Answer):
    """FeedbackOut: a person's rating of a reply."""

    rating: Literal["up", "down"]
    comment: str | None = None
    updated_at: Timestamp


class Message(_Answer):
    """MessageOut"""

    message_id: str
    session_id: str
    role: Role
    content: str
    metadata: MessageMetadata = Field(default_factory=MessageMetadata)
    created_at: Timestamp
    feedback: Feedback | None = None  # assistant messages: PUT .../feedback


class ChatPair(_Answer):
    """ChatOut: the stored user message and the model's stored reply (role `assistant`)."""

    message: Message
    reply: Message


class StartedChat(_Answer):
    """StartedChatOut: the new session (with its `session_token` in anonymous mode, this once), the user
    message and the reply. The document's `session` is optional (absent when a `session_id` was sent);
    the client's start_chat never sends one, so here it is always present."""

    session: CreatedSession
    message: Message
    reply: Message


class StopReply(_Answer):
    """StopReplyOut: whether a reply was being made (a streamed one then stops within a second and is
    stored as far as it got, `attributes.stop_reason: stopped`)."""

    stopping: bool


class MessagePage(_Answer):
    """MessageListOut"""

    items: list[Message]
    next_cursor: str | None


class SessionPage(_Answer):
    """SessionListOut"""

    items: list[Session]
    next_cursor: str | None


class Share(_Answer):
    """ShareOut: a share link (its id is the capability: whoever holds it reads the snapshot)."""

    share_id: str
    created_at: Timestamp
    expires_at: Timestamp
    message_count: int


class SharePage(_Answer):
    """ShareListOut"""

    items: list[Share]
    next_cursor: str | None


class RevokedShare(_Answer):
    """RevokedShareOut"""

    share_id: str
    revoked_at: Timestamp


class SharedMessage(_Answer):
    """SharedMessageOut"""

    role: Role
    content: str
    created_at: Timestamp


class SharedConversation(_Answer):
    """SharedConversationOut: a page of a shared conversation."""

    title: str | None
    created_at: Timestamp
    expires_at: Timestamp
    message_count: int
    items: list[SharedMessage]
    next_cursor: str | None


class ErasedCounts(_Answer):
    """ErasedCounts"""

    messages: int
    uploads: int


class DeleteReceipt(_Answer):
    """DeleteReceiptOut"""

    session_id: str
    deleted_at: Timestamp
    erased: ErasedCounts


class Upload(_Answer):
    """UploadOut: an S3 presigned POST (post `fields`, then the file, to `url`)."""

    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    expires_at: Timestamp
    max_bytes: int


class ExportEncryption(_Answer):
    """ExportEncryptionOut: how an export object is sealed (`chatvault.export.sealed/1`), and its own
    key (base64url, no padding): in the link's answer only, never stored by the service."""

    algorithm: str
    key: str = Field(repr=False)
    chunk_bytes: int
    format: str


class ExportLink(_Answer):
    """ExportLinkOut: an export too large for one answer, as a presigned link to its sealed object
    (valid minutes; the panic button erases it) and the key that opens it (`ChatVault.open_export`).
    `encryption` is None only from a deployment older than sealed exports (a plaintext object)."""

    download_url: str
    expires_at: Timestamp
    encryption: ExportEncryption | None = None


class CreateSessionRequest(_Request):
    """CreateSessionRequest"""

    session_id: str | None = None
    title: str | None = None
    metadata: dict[str, str] | None = None
    temporary: bool | None = None
    retention_hours: int | None = None


class FeedbackRequest(_Request):
    """FeedbackRequest"""

    rating: Literal["up", "down"]
    comment: str | None = None


class UpdateSessionRequest(_Request):
    """UpdateSessionRequest"""

    title: str | None = None
    metadata: dict[str, str] | None = None
    status: Literal["ended"] | None = None
    retention_hours: int | None = None


class AppendMessageRequest(_Request):
    """AppendMessageRequest"""

    role: Role
    content: str
    message_id: str | None = None
    metadata: MessageMetadata | None = None


class ChatRequest(_Request):
    """ChatRequest"""

    content: str
    message_id: str | None = None
    metadata: MessageMetadata | None = None


class StartChatRequest(ChatRequest):
    """StartChatRequest"""

    session_id: str | None = None


class CreateUploadRequest(_Request):
    """CreateUploadRequest"""

    filename: str
    content_type: str
    size: int


class ErrorDetail(_Answer):
    """ErrorDetail"""

    field: str
    problem: str


class ErrorBody(_Answer):
    """ErrorBody"""

    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None
