"""The HTTP contract (../API.md) as pydantic models: requests refuse unknown fields (422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    UUID4,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from chatvault.clock import iso
from chatvault.models.domain import EraseReceipt, MessageRecord, Role, SessionRecord, SessionStatus

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]
Title = Annotated[str, StringConstraints(max_length=200)]


class ApiModel(BaseModel):
    """Validators are built on first use: a function pays only for the models it uses."""

    model_config = ConfigDict(defer_build=True)


class StrictRequest(ApiModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CreateSessionRequest(StrictRequest):
    session_id: UUID4 | None = Field(default=None, description="Client-chosen UUIDv4; 409 if taken.")
    title: Title | None = None
    metadata: Metadata = Field(default_factory=dict)


class UpdateSessionRequest(StrictRequest):
    title: Title | None = None
    metadata: Metadata | None = Field(default=None, description="Replaces the whole map.")
    status: Literal["ended"] | None = Field(default=None, description="One way: ended is read-only.")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one of title, metadata, status")
        if "metadata" in self.model_fields_set and self.metadata is None:
            raise ValueError("metadata must be an object; send {} to clear it")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status can only be set to ended")
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

    @classmethod
    def of(cls, record: SessionRecord) -> SessionOut:
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


ToolName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class MessageMetadata(StrictRequest):
    """Typed message metadata; every key optional, only the keys sent are stored and returned."""

    tools_used: Annotated[list[ToolName], Field(max_length=64)] | None = None
    processing_time_ms: Annotated[StrictInt, Field(ge=0, le=86_400_000)] | None = None
    token_count: Annotated[StrictInt, Field(ge=0, le=10_000_000)] | None = None
    model: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    has_error: StrictBool | None = None
    error_message: Annotated[str, StringConstraints(max_length=2048)] | None = None
    attributes: Metadata | None = None


class AppendMessageRequest(StrictRequest):
    role: Role
    content: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="1..MaxMessageChars characters (default 32768); longer is 413 message_too_large."
    )
    message_id: UUID | None = Field(
        default=None, description="Client id for idempotent retries: same id and body returns 200."
    )
    metadata: MessageMetadata = Field(default_factory=MessageMetadata)


class MessageOut(ApiModel):
    message_id: str
    session_id: str
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: str

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
        )


class MessageListOut(ApiModel):
    items: list[MessageOut]
    next_cursor: str | None


ContentType = Annotated[
    str, StringConstraints(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
]


class CreateUploadRequest(StrictRequest):
    filename: Annotated[
        str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$")
    ] = Field(description="Checked, never stored: file names stay out of keys, metadata and logs.")
    content_type: ContentType
    size: StrictInt = Field(ge=1, description="Bytes; 1..MaxUploadBytes (default 10 MiB).")


class UploadOut(ApiModel):
    upload_id: str
    key: str
    url: str
    fields: dict[str, str]
    expires_at: str
    max_bytes: int
