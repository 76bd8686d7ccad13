"""POST /sessions/{id}/messages: append one message, strictly ordered, idempotent, at constant cost
(how: dal/messages.py). 201 for a new message; 200 with the stored message for a retry of one (same
`message_id`, same body); 409 for a `message_id` used with another body, an ended session, or a
session that holds MaxSessionMessages messages (`session_full`: nothing is stored)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

from chatvault.core.errors import (
    MessageIdConflictError,
    MessageTooLargeError,
    SessionEndedError,
    SessionFullError,
    SessionNotFoundError,
)
from chatvault.core.observability import metrics
from chatvault.core.settings import get_settings
from chatvault.dal import messages
from chatvault.logic.rules.access import Caller, check_role, principal_of, session_id_from_path
from chatvault.logic.rules.pace import AppendLimit
from chatvault.models.api import AppendMessageRequest, MessageOut
from chatvault.models.domain import NewMessage


def body_hash(request: AppendMessageRequest, metadata: dict[str, object]) -> str:
    canonical = json.dumps(
        {"role": request.role, "content": request.content, "metadata": metadata},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append_message(
    raw_session_id: str, request: AppendMessageRequest, caller: Caller
) -> tuple[MessageOut, bool]:
    """The stored message, and whether this call created it (False: an idempotent retry)."""
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    check_role(request.role, caller)
    if len(request.content) > settings.max_message_chars:
        raise MessageTooLargeError(
            f"The message content is longer than {settings.max_message_chars} characters."
        )
    metadata = request.metadata.model_dump(exclude_none=True)
    message = NewMessage(
        session_id=session_id,
        message_id=str(request.message_id or uuid.uuid4()),
        client_id=request.message_id is not None,
        role=request.role,
        content=request.content,
        metadata=metadata,
        body_hash=body_hash(request, metadata),
    )
    appended = messages.append(
        message,
        principal,
        retention=timedelta(seconds=settings.retention_seconds),
        pacer=AppendLimit(settings.append_limit_per_minute),
        ceiling=settings.max_session_messages,
    )
    match appended.outcome:
        case "created" if appended.message is not None:
            metrics.add_metric(name="MessagesAppended", unit="Count", value=1)
            return MessageOut.of(appended.message), True
        case "replayed" if appended.message is not None:
            return MessageOut.of(appended.message), False
        case "conflict":
            raise MessageIdConflictError()
        case "ended":
            raise SessionEndedError()
        case "full":
            raise SessionFullError()
        case _:
            raise SessionNotFoundError()
