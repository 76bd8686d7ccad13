"""The HTTP contract (../API.md) as pydantic models: requests refuse unknown fields (422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from chatvault.core import bounds, clock
from chatvault.core.clock import iso
from chatvault.core.settings import get_settings
from chatvault.models.domain import (
    EraseReceipt,
    Feedback,
    MessageRecord,
    Role,
    SessionRecord,
    SessionStatus,
    ShareRecord,
    UploadRecord,
    UploadStatus,
)

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=bounds.METADATA_KEY_CHARS)]
MetadataValue = Annotated[str, StringConstraints(max_length=bounds.METADATA_VALUE_CHARS)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=bounds.METADATA_PAIRS)]
Title = Annotated[str, StringConstraints(max_length=bounds.TITLE_CHARS)]

# Ids in the canonical hyphenated form only (any case; stored lowercase): the document declares exactly
# this pattern, so what it calls valid is what the service accepts. A client-chosen session id is a v4.
UUID_PATTERN = bounds.UUID_TEXT_PATTERN
UUID4_PATTERN = bounds.UUID4_TEXT_PATTERN


def _uuid_text(value: object) -> object:
    """Python callers may pass uuid.UUID objects; JSON clients send strings."""
    return str(value) if isinstance(value, UUID) else value


Uuid = Annotated[
    str, StringConstraints(pattern=UUID_PATTERN), AfterValidator(str.lower), BeforeValidator(_uuid_text)
]
Uuid4 = Annotated[
    str, StringConstraints(pattern=UUID4_PATTERN), AfterValidator(str.lower), BeforeValidator(_uuid_text)
]


def _integral(value: object) -> object:
    """JSON Schema's integer: any number with a zero fraction (`1098.0` too), never a string or bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")  # a ValueError is what pydantic reports as a 422
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# Integer fields: the bounds come before the validator (after it, pydantic writes them into the JSON
# schema as `ge`/`le`, which JSON Schema does not know).
Milliseconds = Annotated[int, Field(ge=0, le=86_400_000), BeforeValidator(_integral)]
TokenCount = Annotated[int, Field(ge=0, le=10_000_000), BeforeValidator(_integral)]
RetentionHours = Annotated[int, Field(ge=1, le=bounds.RETENTION_HOURS_MAX), BeforeValidator(_integral)]


class ApiModel(BaseModel):
    """Validators are built on first use: a function pays only for the models it uses."""

    model_config = ConfigDict(defer_build=True)


class StrictRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _no_default(schema: dict[str, Any]) -> None:
    """A field whose Python default (None) is not a value the document allows."""
    schema.pop("default", None)


class CreateSessionRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "Onboarding", "metadata": {"channel": "web"}}]}
    )

    session_id: Uuid4 | None = Field(
        default=None,
        description=(
            "Client-chosen UUIDv4; 409 if taken. Every attempt counts against the create limit, taken or"
            " not: over it, 429 either way."
        ),
    )
    title: Title | None = None
    metadata: Metadata = Field(default_factory=dict)
    temporary: StrictBool = Field(
        default=False,
        description=(
            "A temporary conversation: it expires TemporaryRetentionHours (default 24, never more than"
            " RetentionHours) after its last activity, is never listed by GET /sessions and cannot be"
            " claimed (409 session_temporary)."
        ),
        json_schema_extra=_no_default,  # optional in the document (absent: false), as metadata is
    )
    retention_hours: RetentionHours | SkipJsonSchema[None] = Field(
        default=None,
        description=(
            "How long the conversation is kept after its last activity, in hours: from 1 to the"
            " deployment's RetentionHours (the served document states it; more is 422). A temporary"
            " conversation is never kept longer than TemporaryRetentionHours: more is lowered to it."
            " Absent: RetentionHours (a temporary one's: TemporaryRetentionHours)."
        ),
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def _no_null_retention(self) -> Self:
        if "retention_hours" in self.model_fields_set and self.retention_hours is None:
            raise ValueError("retention_hours must be a whole number of hours; leave it out for the default")
        return self


class UpdateSessionRequest(StrictRequest):
    """At least one field. `title: null` clears the title; `metadata` and `status` cannot be null (the
    document does not declare null for them: SkipJsonSchema keeps the Python default out of it)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "examples": [{"title": "Renamed"}]})

    title: Title | None = None
    metadata: Metadata | SkipJsonSchema[None] = Field(
        default=None, description="Replaces the whole map.", json_schema_extra=_no_default
    )
    status: Literal["ended"] | SkipJsonSchema[None] = Field(
        default=None, description="One way: ended is read-only.", json_schema_extra=_no_default
    )
    retention_hours: RetentionHours | SkipJsonSchema[None] = Field(
        default=None,
        description=(
            "Shorten (or lengthen, up to RetentionHours; more is 422) how long the conversation is kept;"
            " a temporary conversation's is never more than TemporaryRetentionHours (more is lowered to"
            " it). Applied at once: the session expires this long after this request, and each message"
            " and upload this long after it was written (those already older than that are deleted)."
        ),
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one of title, metadata, status, retention_hours")
        if "metadata" in self.model_fields_set and self.metadata is None:
            raise ValueError("metadata must be an object; send {} to clear it")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status can only be set to ended")
        if "retention_hours" in self.model_fields_set and self.retention_hours is None:
            raise ValueError("retention_hours must be a whole number of hours")
        return self


class SessionOut(ApiModel):
    session_id: str
    title: str | None
    metadata: dict[str, str]
    status: SessionStatus
    created_at: str
    updated_at: str
    last_message_at: str | None
    message_count: int
    preview: str | None
    expires_at: str
    temporary: bool = Field(
        default=False, description="A temporary conversation: unlisted, never claimed, kept briefly."
    )
    retention_hours: int = Field(
        description=(
            "How long the conversation is kept after its last activity, in hours (its own, set on create"
            " or PATCH, else the deployment's RetentionHours); each message and upload is kept this long"
            " after it was written."
        ),
    )
    replying: bool = Field(
        default=False,
        description="A reply of the chat is being made now (POST .../chat); it will appear in the history.",
    )

    @classmethod
    def of(cls, record: SessionRecord) -> SessionOut:
        deployment = get_settings().retention_hours
        return cls(
            session_id=record.session_id,
            title=record.title,
            metadata=record.metadata,
            status=record.status,
            created_at=iso(record.created_at),
            updated_at=iso(record.updated_at),
            last_message_at=iso(record.last_message_at) if record.last_message_at else None,
            message_count=record.message_count,
            preview=record.preview,
            expires_at=iso(record.expires_at),
            temporary=record.temporary,
            retention_hours=min(record.retention_hours or deployment, deployment),
            replying=record.replying(clock.now()),
        )


class CreatedSessionOut(SessionOut):
    session_token: str | None = Field(
        default=None, description="Anonymous mode only; returned once, never again."
    )


class ErasedCounts(ApiModel):
    messages: int
    uploads: int


class DeleteReceiptOut(ApiModel):
    session_id: str
    deleted_at: str
    erased: ErasedCounts

    @classmethod
    def of(cls, receipt: EraseReceipt) -> DeleteReceiptOut:
        return cls(
            session_id=receipt.session_id,
            deleted_at=iso(receipt.deleted_at),
            erased=ErasedCounts(messages=receipt.messages, uploads=receipt.uploads),
        )


class SessionListOut(ApiModel):
    items: list[SessionOut]
    next_cursor: str | None


class ErrorDetail(ApiModel):
    field: str
    problem: str


class ErrorBody(ApiModel):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] | None = None


class ErrorOut(ApiModel):
    error: ErrorBody


class GatewayMessageOut(ApiModel):
    """API Gateway's own answer, not the service's error body: on the service writer's routes, its
    403 for a missing or bad signature (`{"message": "Forbidden"}`)."""

    message: str


class ForbiddenOut(RootModel[ErrorOut | GatewayMessageOut]):
    """A 403 of the service writer's routes: API Gateway's (bad signature) or the service's."""

    model_config = ConfigDict(defer_build=True)


ToolName = Annotated[str, StringConstraints(min_length=1, max_length=bounds.TOOL_NAME_CHARS)]


class MessageMetadata(StrictRequest):
    """Typed message metadata; every key optional, only the keys sent are stored and returned."""

    tools_used: Annotated[list[ToolName], Field(max_length=bounds.TOOL_NAMES)] | None = None
    processing_time_ms: Milliseconds | None = None
    token_count: TokenCount | None = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=bounds.MODEL_CHARS)] | None = None
    has_error: StrictBool | None = None
    error_message: Annotated[str, StringConstraints(max_length=bounds.ERROR_MESSAGE_CHARS)] | None = None
    attributes: Metadata | None = None


class AppendMessageRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"role": "user", "content": "Hello", "message_id": "9b2d4c1e-3f5a-4e6b-8c7d-0a1b2c3d4e5f"}
            ]
        }
    )

    role: Role
    content: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="1..MaxMessageChars characters (default 32768); longer is 413 message_too_large."
    )
    message_id: Uuid | None = Field(
        default=None, description="Client id for idempotent retries: same id and body returns 200."
    )
    metadata: MessageMetadata = Field(default_factory=MessageMetadata)


class FeedbackRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rating": "up"}, {"rating": "down", "comment": "Too long"}]}
    )

    rating: Literal["up", "down"]
    comment: Annotated[str, StringConstraints(max_length=bounds.FEEDBACK_COMMENT_CHARS)] | None = Field(
        default=None,
        description=(
            f"At most {bounds.FEEDBACK_COMMENT_CHARS} characters. Content: kept, exported and erased with"
            " the message, never logged nor counted."
        ),
    )


class FeedbackOut(ApiModel):
    rating: Literal["up", "down"]
    comment: str | None
    updated_at: str

    @classmethod
    def of(cls, record: Feedback) -> FeedbackOut:
        return cls.model_construct(
            rating=record.rating, comment=record.comment, updated_at=iso(record.updated_at)
        )


class MessageOut(ApiModel):
    message_id: str
    session_id: str
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: str
    feedback: FeedbackOut | None = Field(
        description="A person's feedback on this reply (assistant messages: PUT .../feedback), or null.",
    )

    @classmethod
    def of(cls, record: MessageRecord) -> MessageOut:
        """From a stored record (already valid: no second validation on the hot read path)."""
        return cls.model_construct(
            message_id=record.message_id,
            session_id=record.session_id,
            role=record.role,
            content=record.content,
            metadata=record.metadata,
            created_at=iso(record.created_at),
            feedback=FeedbackOut.of(record.feedback) if record.feedback is not None else None,
        )


class ShareOut(ApiModel):
    share_id: str = Field(
        description="The link's capability: 128 random bits. Whoever holds it may read the snapshot."
    )
    created_at: str
    expires_at: str = Field(
        description="ShareHours after it was made, never after the conversation's retention."
    )
    message_count: int = Field(description="How many messages the conversation held when it was shared.")

    @classmethod
    def of(cls, record: ShareRecord) -> ShareOut:
        return cls(
            share_id=record.share_id,
            created_at=iso(record.created_at),
            expires_at=iso(record.expires_at),
            message_count=record.message_count,
        )


class ShareListOut(ApiModel):
    items: list[ShareOut]
    next_cursor: str | None


class RevokedShareOut(ApiModel):
    share_id: str
    revoked_at: str


class SharedMessageOut(ApiModel):
    """A message of a shared conversation: who wrote it, what, when; nothing else."""

    role: Role
    content: str
    created_at: str


class SharedConversationOut(ApiModel):
    """GET /shared/{share_id}: the conversation's title and, in pages, the messages it held when it was
    shared (those its retention has not removed since). No session id, no metadata, no uploads."""

    title: str | None
    created_at: str = Field(description="When the link was made: the snapshot's moment.")
    expires_at: str
    message_count: int
    items: list[SharedMessageOut]
    next_cursor: str | None


class MessageListOut(ApiModel):
    items: list[MessageOut]
    next_cursor: str | None


# ---- the chat: the user message, the model's reply ----------------------------------------------


def _not_blank(text: str) -> str:
    """A model refuses a message of spaces alone (Bedrock: a ValidationException): a 422 here, not a
    stored message that every later chat of the session would carry to the model."""
    if not text.strip():
        raise ValueError("must contain more than white space")
    return text


class ChatRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"content": "Hello", "message_id": "9b2d4c1e-3f5a-4e6b-8c7d-0a1b2c3d4e5f"}]
        }
    )

    content: Annotated[str, StringConstraints(min_length=1), AfterValidator(_not_blank)] = Field(
        description=(
            "The user message: 1..MaxMessageChars characters (default 32768; longer is 413), not only white "
            "space (422)."
        )
    )
    message_id: Uuid | None = Field(
        default=None,
        description=(
            "Client id of the user message. Send one: a retry with it (same content) stores nothing twice, "
            "and completes the pair when the reply was not stored (the model failed, the function died)."
        ),
    )
    metadata: MessageMetadata = Field(default_factory=MessageMetadata)


class StartChatRequest(ChatRequest):
    model_config = ConfigDict(json_schema_extra={"examples": [{"content": "Hello"}]})

    session_id: Uuid | None = Field(
        default=None,
        description="An existing session (then this is POST /sessions/{session_id}/chat); none: a new one.",
    )


class ChatOut(ApiModel):
    message: MessageOut = Field(description="The stored user message.")
    reply: MessageOut = Field(description="The stored assistant reply.")


class StartedChatOut(ApiModel):
    session: CreatedSessionOut | SkipJsonSchema[None] = Field(
        default=None,
        description=(
            "Only when this call created the session (no `session_id` sent): the new session, with its "
            "`session_token` in anonymous mode, this once."
        ),
    )
    message: MessageOut
    reply: MessageOut


class MessageEvent(ApiModel):
    """What a bot is told of each stored message (MessageEventsQueue, README "Your own bot"): which
    message, never what it says. The bot reads the content through the service routes, so an erase
    reaches everything a bot could still read. `position` orders a session's messages (a string of
    digits, compared as text)."""

    session_id: str
    message_id: str
    position: str
    role: str
    created_at: str


class StopReplyOut(ApiModel):
    stopping: bool = Field(
        description=(
            "True: a reply was being made; a streamed one stops within a second and is stored as far as it "
            "got (`attributes.stop_reason: stopped`). False: none was being made; nothing changed."
        )
    )


UploadSize = Annotated[int, Field(ge=1, le=bounds.UPLOAD_BYTES_MAX), BeforeValidator(_integral)]
ContentType = Annotated[
    str, StringConstraints(min_length=3, max_length=255, pattern=bounds.CONTENT_TYPE_PATTERN)
]


class CreateUploadRequest(StrictRequest):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"filename": "id.png", "content_type": "image/png", "size": 2048}]}
    )

    filename: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")
    ] = Field(description="Checked, never stored: file names stay out of keys, metadata and logs.")
    content_type: ContentType = Field(
        description="One of the deployment's AllowedUploadTypes (default image/png, image/jpeg, "
        "image/webp, application/pdf, text/plain); another is 422. The form pins it."
    )
    size: UploadSize = Field(description="Bytes; 1..MaxUploadBytes (default 10 MiB).")


class UploadOut(ApiModel):
    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    expires_at: str
    max_bytes: int


# ---- a person's rights over their data: uploads' read side, export, erase-all ---------------------


class UploadInfoOut(ApiModel):
    """An upload as the read side shows it: never its file name (none is stored). `size` is the
    declared largest size while pending, the object's real size once stored."""

    upload_id: str
    content_type: str
    size: int
    status: UploadStatus
    created_at: str
    expires_at: str

    @classmethod
    def of(cls, record: UploadRecord) -> UploadInfoOut:
        return cls(
            upload_id=record.upload_id,
            content_type=record.content_type,
            size=record.size,
            status=record.status,
            created_at=iso(record.created_at),
            expires_at=iso(record.expires_at),
        )


class UploadInfoListOut(ApiModel):
    items: list[UploadInfoOut]
    next_cursor: str | None


class UploadDownloadOut(UploadInfoOut):
    download_url: str = Field(description="A presigned GET of the file, valid 5 minutes.")


class ExportedUploadOut(UploadInfoOut):
    download_url: str | None = Field(
        default=None, description="Stored files only: a presigned GET, valid 5 minutes."
    )


EXPORT_FORMAT: Literal["chatvault.export/1"] = "chatvault.export/1"


class SessionExportOut(ApiModel):
    """The export format, version 1 (docs/API.md): what an import reads back. Messages oldest first,
    all of them, in the shape GET .../messages answers."""

    format: Literal["chatvault.export/1"] = EXPORT_FORMAT
    exported_at: str
    session: SessionOut
    messages: list[MessageOut]
    uploads: list[ExportedUploadOut]


class ExportEncryptionOut(ApiModel):
    """How the export object is sealed (docs/API.md, "The sealed export object"), and its key."""

    algorithm: Literal["AES-256-GCM"]
    key: str = Field(
        repr=False,  # never in a log line or a traceback
        description=(
            "The object's own 256-bit key, base64url without padding. In this answer only: never "
            "stored, so keep it with the link."
        ),
    )
    chunk_bytes: int = Field(description="Plaintext bytes of every chunk but the last (1,048,576).")
    format: Literal["chatvault.export.sealed/1"]


class ExportLinkOut(ApiModel):
    """An export too large for one response: a link to the export object (JSON or Markdown, as the
    name it ends with says: `.json` or `.md`), sealed under the key `encryption` carries."""

    download_url: str = Field(description="A presigned GET of the sealed object, valid 15 minutes.")
    expires_at: str
    encryption: ExportEncryptionOut


class ErasedAllCounts(ApiModel):
    sessions: int
    messages: int
    uploads: int


class EraseAllReceiptOut(ApiModel):
    deleted_at: str
    erased: ErasedAllCounts
