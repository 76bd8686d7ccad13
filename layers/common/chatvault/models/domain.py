"""What the dal returns and the logic works with. Never a raw DynamoDB item."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

SessionStatus = Literal["active", "ended"]


class SessionRecord(BaseModel):
    """A stored session, with the secrets the API never returns (token hash, owner)."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    token_hash: str | None
    owner_id: str | None
    title: str | None
    metadata: dict[str, str]
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    message_count: int
    preview: str | None
    expires_at: datetime
    uploads_issued: int = 0
    deleted_at: datetime | None = None

    def is_live(self, at: datetime) -> bool:
        """Readable: not expired (TTL deletes late) and not being erased."""
        return self.deleted_at is None and self.expires_at > at


class NewSession(BaseModel):
    """A session about to be created."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    token_hash: str | None
    owner_id: str | None
    title: str | None
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime


class SessionChanges(BaseModel):
    """A PATCH: only the fields the client sent are applied (`fields`)."""

    model_config = ConfigDict(frozen=True)

    fields: frozenset[str]
    title: str | None = None
    metadata: dict[str, str] | None = None
    end: bool = False


class EraseReceipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: str
    deleted_at: datetime
    messages: int
    uploads: int


class Page[T](BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None


class Principal(BaseModel):
    """Who may act on a session: the holder of a token (anonymous) or a JWT subject (jwt)."""

    model_config = ConfigDict(frozen=True)

    token_hash: str | None = None
    owner_id: str | None = None
