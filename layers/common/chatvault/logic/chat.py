"""POST /sessions/{id}/chat and POST /chat: store the user's message, ask the model with the session's
history, store its reply exactly once, and answer with both.

Exactly once. The user message is an append like any other (same identity, validation, limits,
errors; a client `message_id` keeps its marker). The reply's `message_id` is derived from the user
message's (uuid5), and the reply can only be stored by the attempt that holds the session's reply
guard (dal/messages.py ReplyLock), which frees it in the same write. A retry with the same
`message_id` finds its user message stored; it takes the guard, and under it either finds the reply
(200, the same pair, nothing stored) or asks the model again and stores the reply (201). Two attempts
can never both store a reply: each needs the guard, and the one that comes second finds the first's
reply.

One reply at a time. The user message's append takes the guard in its own transaction; while another
chat of the session holds it, the chat is 409 reply_in_progress and stores nothing. A guard lasts to
the end of its function's invocation (Lambda's remaining time), so one abandoned by a dead function
frees the session when that function would have been stopped anyway.

Failures. A model error (503/504/502, llm/) frees the guard at once and leaves the user message
stored: the retry completes the pair. A session erased or ended while the model was answering
refuses the reply's write: nothing is stored after an erase.

Sealed: both messages are sealed under the session's key and the history opens with it (dal/aws/items.py);
the key is read once, before the first write (none when this function holds it: the session it served
in the last minutes, or the one it has just created).

Cost (the benchmark's chat section): round trip 1 is the user message's transaction (6 write units
with a `message_id`, the guard riding on the session item) beside the history's Query; round trip 2
is the reply's transaction (4 write units), which frees the guard. Two round trips, 10 write units;
one GetItem (a round trip) more when the key is not held."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from chatvault import llm
from chatvault.core import clock, deadline
from chatvault.core.clock import millis
from chatvault.core.errors import (
    ChatStartedError,
    ChatVaultError,
    MessageIdConflictError,
    MessageTooLargeError,
    ReplyInProgressError,
    SessionEndedError,
    SessionFullError,
    SessionNotFoundError,
    StorageUnavailableError,
)
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import Settings, get_settings
from chatvault.dal import messages, replies
from chatvault.dal.messages import ReplyLock
from chatvault.llm import ModelReply, ModelRequest
from chatvault.llm.context import turns_of
from chatvault.logic.append_message import body_hash
from chatvault.logic.create_session import create_session
from chatvault.logic.rules.access import Caller, check_role, principal_of, session_id_from_path
from chatvault.logic.rules.pace import AppendLimit
from chatvault.models.api import (
    AppendMessageRequest,
    ChatOut,
    ChatRequest,
    CreatedSessionOut,
    CreateSessionRequest,
    MessageOut,
    StartChatRequest,
    StartedChatOut,
)
from chatvault.models.domain import Appended, MessageRecord, NewMessage, Principal, kept

# Reply ids: uuid5 of the user message's id in this namespace (the same user message, the same reply id)
REPLY_NAMESPACE = uuid.UUID("5d3f4c1e-8a2b-4c6d-9e0f-1a2b3c4d5e6f")
# A reply the person stopped (POST .../chat/stop, streamed replies): stored as far as it got
STOPPED = "stopped"
# A guard outside a Lambda invocation (tools, tests without a context): as long as a chat function runs
GUARD_WITHOUT_DEADLINE_S = 28.0


def reply_id_of(message_id: str) -> str:
    return str(uuid.uuid5(REPLY_NAMESPACE, message_id))


def chat(raw_session_id: str, request: ChatRequest, caller: Caller) -> tuple[ChatOut, bool]:
    """The stored pair, and whether this call stored the reply (False: a retry answered with the pair
    an earlier call stored)."""
    return _chat(session_id_from_path(raw_session_id), request, caller)


def start_chat(request: StartChatRequest, caller: Caller) -> tuple[ChatOut | StartedChatOut, bool]:
    """POST /chat: with a session_id, the session's chat (its answer has no `session`); without, a new
    session first (the create's rules and limits), then its chat. If the chat then fails, its error
    carries the new session (and the stored user message), whose token is sent only in this answer."""
    if request.session_id is not None:  # the session's chat route, answered as it answers
        return _chat(request.session_id, request, caller)
    session, own = open_session(caller)
    stored: list[MessageOut] = []
    try:
        pair, _ = _chat(session.session_id, request, own, stored=stored)
    except ChatVaultError as exc:
        started: dict[str, Any] = {"session": session.model_dump(mode="json")}
        if stored:
            started["message"] = stored[0].model_dump(mode="json")
        raise ChatStartedError(exc, started) from exc
    return StartedChatOut(session=session, message=pair.message, reply=pair.reply), True


def open_session(caller: Caller) -> tuple[CreatedSessionOut, Caller]:
    """A chat without a session: a new one (the create's rules and limits), and the caller as its
    holder (with its token, in anonymous mode) for what follows."""
    session = create_session(CreateSessionRequest(), caller)
    token = session.session_token
    return session, caller if token is None else caller.model_copy(update={"token": token})


@dataclass
class Begun:
    """A chat whose user message is stored and whose guard is held, or whose reply already exists."""

    session_id: str
    user: MessageRecord
    lock: ReplyLock
    key: bytes | None = field(repr=False)  # the session's key (None: a legacy session); never logged
    found: MessageRecord | None = None
    earlier: list[MessageRecord] = field(default_factory=list)
    attempt: int = 1


def _chat(
    session_id: str, request: ChatRequest, caller: Caller, stored: list[MessageOut] | None = None
) -> tuple[ChatOut, bool]:
    begun = begin(session_id, request, caller, stored)
    if begun.found is not None:
        return ChatOut(message=MessageOut.of(begun.user), reply=MessageOut.of(begun.found)), False
    try:
        reply = _ask(begun, get_settings())
    except BaseException:
        free_guard(session_id, begun.lock)
        raise
    return ChatOut(message=MessageOut.of(begun.user), reply=MessageOut.of(reply)), True


def begin(
    session_id: str, request: ChatRequest, caller: Caller, stored: list[MessageOut] | None = None
) -> Begun:
    """Store the user message and take the session's guard (one transaction), with the history the
    model will see read beside it; for a retry, take the guard alone and look for the reply (found:
    the guard is freed again)."""
    settings = get_settings()
    principal = principal_of(caller)
    check_role("user", caller)
    if len(request.content) > settings.max_message_chars:
        raise MessageTooLargeError(
            f"The message content is longer than {settings.max_message_chars} characters."
        )
    metadata = request.metadata.model_dump(exclude_none=True)
    as_append = AppendMessageRequest(
        role="user", content=request.content, message_id=request.message_id, metadata=request.metadata
    )
    message = NewMessage(
        session_id=session_id,
        message_id=str(request.message_id or uuid.uuid4()),
        client_id=request.message_id is not None,
        role="user",
        content=request.content,
        metadata=metadata,
        body_hash=body_hash(as_append, metadata),
    )
    lock = ReplyLock(token=uuid.uuid4().hex, until_ms=_guard_until())
    key = replies.sealing_key(session_id)
    earlier_read = replies.context_soon(session_id, settings.chat_context_messages, key)
    appended = messages.append(
        message,
        principal,
        retention=timedelta(seconds=settings.retention_seconds),
        pacer=AppendLimit(settings.append_limit_per_minute),
        ceiling=settings.max_session_messages - 1,  # room for the reply
        lock=lock,
        key=key,
    )
    user = _user_message(appended)
    if stored is not None:
        stored.append(MessageOut.of(user))
    if appended.outcome == "created":
        metrics.add_metric(name="MessagesAppended", unit="Count", value=1)
    else:  # a retry: its user message is stored; the reply is found, or made under the guard
        earlier_read.cancel()
        found = replies.find(session_id, user.position, reply_id_of(user.message_id), key)
        if found is not None:  # answered as it was, even if the session has ended or is busy since
            return Begun(session_id, user, lock, key, found=found)
        match replies.take(session_id, principal, lock, clock.now()):
            case "busy":
                raise ReplyInProgressError()
            case "ended":
                raise SessionEndedError()
            case "gone":
                raise SessionNotFoundError()
    try:  # the guard is this call's: whatever happens before the reply's write frees it, it is freed
        if appended.outcome == "created":
            earlier = [m for m in _result(earlier_read) if m.position < user.position]
            earlier = _readable(earlier, user)
            return Begun(session_id, user, lock, key, earlier=earlier, attempt=1)
        found = replies.find(session_id, user.position, reply_id_of(user.message_id), key)
        if found is not None:
            free_guard(session_id, lock)
            return Begun(session_id, user, lock, key, found=found)
        earlier = _readable(
            replies.context(session_id, settings.chat_context_messages, key, before=user.position), user
        )
        return Begun(session_id, user, lock, key, earlier=earlier, attempt=2)
    except BaseException:
        free_guard(session_id, lock)
        raise


def _readable(earlier: list[MessageRecord], user: MessageRecord) -> list[MessageRecord]:
    """The history the model may see is what a read returns (models/domain.py `kept`), by the
    retention the user message was written under (its TTL less its time, in whole seconds)."""
    at = clock.now()
    return [m for m in earlier if kept(m.created_at, m.expires_at, at, user.expires_at - user.created_at)]


def _guard_until() -> int:
    """The guard lapses when this invocation ends: by then its function is stopped, dead or alive."""
    remaining = deadline.remaining_s()
    seconds = GUARD_WITHOUT_DEADLINE_S if remaining is None else max(remaining, 0.0)
    return millis(clock.now()) + int(seconds * 1000) + 1000


def _result(read: Any) -> list[MessageRecord]:
    result: list[MessageRecord] = read.result()
    return result


def _user_message(appended: Appended) -> MessageRecord:
    match appended.outcome:
        case "created" | "replayed" if appended.message is not None:
            if appended.message.role != "user":
                raise MessageIdConflictError()
            return appended.message
        case "conflict":
            raise MessageIdConflictError()
        case "ended":
            raise SessionEndedError()
        case "full":
            raise SessionFullError(
                "The session holds as many messages as a session may (MaxSessionMessages), with room "
                "for no reply."
            )
        case "busy":
            raise ReplyInProgressError()
        case _:
            raise SessionNotFoundError()


def model_request(begun: Begun, settings: Settings) -> ModelRequest:
    return ModelRequest(
        system=settings.system_prompt,
        turns=turns_of(begun.earlier, begun.user.content, settings.chat_context_messages),
        max_tokens=settings.max_reply_tokens,
        attempt=begun.attempt,
    )


def _ask(begun: Begun, settings: Settings) -> MessageRecord:
    """Ask the model and store its reply under the guard, freeing it in the same write; a model
    failure is raised (the caller frees the guard)."""
    started = time.monotonic()
    try:
        reply = llm.answer(model_request(begun, settings))
    except ChatVaultError as exc:  # the caller frees the guard
        metrics.add_metric(name="ModelFailures", unit="Count", value=1)
        logger.info("no reply stored", extra={"error_type": type(exc).__name__, "attempt": begun.attempt})
        raise
    return store_reply(begun, reply, int((time.monotonic() - started) * 1000), settings)


def store_reply(begun: Begun, reply: ModelReply, elapsed_ms: int, settings: Settings) -> MessageRecord:
    """The reply's write: under the guard, which it frees (a session erased or ended meanwhile refuses
    it: nothing is stored)."""
    lock = begun.lock
    appended = messages.append(
        _reply_message(begun.session_id, reply_id_of(begun.user.message_id), reply, elapsed_ms, settings),
        Principal(service=True),  # the service writes the reply; the guard (this chat's) is the check
        retention=timedelta(seconds=settings.retention_seconds),
        pacer=AppendLimit(0),  # the reply is not the client's append: AppendRateLimit counts the user's
        ceiling=None,
        lock=ReplyLock(token=lock.token, until_ms=lock.until_ms, holds=True),
        key=begun.key,
    )
    match appended.outcome:
        case "created" if appended.message is not None:
            metrics.add_metric(name="RepliesStored", unit="Count", value=1)
            return appended.message
        case "ended":
            raise SessionEndedError()
        case "busy":  # the guard lapsed and another attempt took it: that one stores the reply
            raise ReplyInProgressError()
        case _:
            raise SessionNotFoundError()


def _reply_message(
    session_id: str, reply_id: str, reply: ModelReply, elapsed_ms: int, settings: Settings
) -> NewMessage:
    # a stream closed early (Stop, the time limit): Bedrock reports no token counts
    stopped = reply.stop_reason in (STOPPED, "time_limit")
    attributes = {} if stopped else {"input_tokens": str(reply.input_tokens)}
    if reply.stop_reason not in ("end_turn", "stop_sequence"):
        attributes["stop_reason"] = reply.stop_reason
    if reply.guardrail_intervened:
        attributes["guardrail"] = "intervened"
    text = reply.text
    if len(text) > settings.max_message_chars:  # a reply longer than a message may be: cut, and said
        text = text[: settings.max_message_chars]
        attributes["stop_reason"] = "max_message_chars"
    metadata: dict[str, Any] = {
        "model": reply.model,
        "processing_time_ms": elapsed_ms,
        "attributes": attributes,
    }
    if not stopped:
        metadata["token_count"] = reply.output_tokens
    return NewMessage(
        session_id=session_id,
        message_id=reply_id,
        client_id=False,
        role="assistant",
        content=text,
        metadata=metadata,
        body_hash="",
    )


def free_guard(session_id: str, lock: ReplyLock) -> None:
    """Free the guard early (nothing when the reply's write already freed it); if storage fails now, it
    lapses on its own at the end of the invocation."""
    try:
        replies.give_back(session_id, lock)
    except StorageUnavailableError:
        logger.warning("reply guard left to lapse")
