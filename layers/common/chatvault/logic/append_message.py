"""POST /sessions/{id}/messages: append one message, strictly ordered, idempotent, at constant cost.

Order: each message gets a position (microseconds since the epoch, fixed width) and the append's
transaction conditions on the session's `last_position < position`. DynamoDB serializes writes to the
session item, so positions grow in the order appends are accepted. A writer whose clock is behind, or
that lost a race, learns the current last position from the refused transaction (ALL_OLD) and
retries just above it: one round trip in the common case, no read before the write.

Idempotency: a client `message_id` writes a marker item in the same transaction; a retry finds it,
and the same body returns the stored message (200) while another body is 409.

Cost: the transaction writes the small session item and the message (and the marker): 4 write units
for a 500-character message (6 with a `message_id`), whatever the session's title and metadata. The
profile holding those is touched only when the session would outlive its TTL (dal/sessions.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

from chatvault import clock
from chatvault.dal import messages, retry
from chatvault.errors import (
    MessageIdConflictError,
    MessageTooLargeError,
    SessionEndedError,
    SessionNotFoundError,
    StorageUnavailableError,
)
from chatvault.logic import pace
from chatvault.logic.identity import Caller, authorize, principal_of, session_id_from_path
from chatvault.models.api import AppendMessageRequest, MessageOut
from chatvault.models.domain import AppendOutcome, NewMessage, Principal
from chatvault.observability import metrics
from chatvault.settings import get_settings


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
    if len(request.content) > settings.max_message_chars:
        raise MessageTooLargeError(
            f"The message content is longer than {settings.max_message_chars} characters."
        )
    metadata = request.metadata.model_dump(exclude_none=True)
    digest = body_hash(request, metadata)
    message_id = str(request.message_id or uuid.uuid4())
    retention = timedelta(seconds=settings.retention_seconds)

    floor = ""
    known_tat: int | None = None
    refresh_profile = False
    for attempt in range(retry.APPEND_ATTEMPTS):
        at = clock.now()
        position = max(messages.position_of(at), floor)
        message = NewMessage(
            session_id=session_id,
            message_id=message_id,
            client_id=request.message_id is not None,
            role=request.role,
            content=request.content,
            metadata=metadata,
            body_hash=digest,
            created_at=at,
            expires_at=at + retention,
        )
        rate = pace.step(session_id, settings.append_limit_per_minute, at, known_tat, first=attempt == 0)
        outcome = messages.append(
            message, principal, position, at + retention, rate, refresh_profile=refresh_profile
        )
        if outcome.committed:
            pace.accepted(session_id, rate)
            metrics.add_metric(name="MessagesAppended", unit="Count", value=1)
            return _out(message), True
        replay = _settle(outcome, session_id, principal, digest)
        if replay is not None:
            return replay, False
        if outcome.session is not None:
            known_tat = outcome.session.append_tat
        refresh_profile = refresh_profile or outcome.profile_stale
        if outcome.transient:
            retry.pause(attempt, base=0.005)
        floor = _next_floor(outcome, position, floor)
    raise StorageUnavailableError("Too many concurrent writers on this session; retry shortly.")


def _out(message: NewMessage) -> MessageOut:
    return MessageOut(
        message_id=message.message_id,
        session_id=message.session_id,
        role=message.role,
        content=message.content,
        metadata=message.metadata,
        created_at=clock.iso(message.created_at),
    )


def _next_floor(outcome: AppendOutcome, position: str, floor: str) -> str:
    """The lowest position the next attempt may use: above the session's last one, above a taken one."""
    candidates = [floor]
    if outcome.session is not None and outcome.session.last_position:
        candidates.append(messages.next_position(outcome.session.last_position))
    if outcome.position_taken:
        candidates.append(messages.next_position(position))
    return max(candidates)


def _settle(outcome: AppendOutcome, session_id: str, principal: Principal, digest: str) -> MessageOut | None:
    """Decide a refused append: raise the caller's error, return a stored message for a retry, or
    return None to try again at a higher position."""
    if outcome.session_refused:
        session = authorize(outcome.session, principal)
        if not session.is_live(clock.now()):
            raise SessionNotFoundError()
    if outcome.duplicate_position is not None:
        if outcome.duplicate_hash != digest:
            raise MessageIdConflictError()
        stored = messages.get(session_id, outcome.duplicate_position)
        if stored is None:
            raise SessionNotFoundError()
        return MessageOut.of(stored)
    if outcome.session_refused and outcome.session is not None and outcome.session.status == "ended":
        raise SessionEndedError()
    return None
