"""POST /sessions/{id}/chat and POST /chat with `Accept: text/event-stream`: the chat of logic/chat.py
(the same identity, limits, idempotency, reply guard and failure answers) as events, the model's text
sent as it writes it (Bedrock's ConverseStream, or the stand-in word by word), and the reply stored
once, when it is complete. The person's Stop (logic/stop_reply.py) ends it early: the text so far is
stored. A client that goes away does not: the consumer runs the events to their end, so a reload finds
the whole reply stored."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

from chatvault import llm
from chatvault.core import deadline
from chatvault.core.errors import ChatVaultError, ModelTimeoutError, ReplyStoppedError
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import Settings, get_settings
from chatvault.dal import replies
from chatvault.llm import ModelReply
from chatvault.logic.chat import STOPPED, Begun, begin, free_guard, model_request, open_session, store_reply
from chatvault.logic.rules.access import Caller, session_id_from_path
from chatvault.models.api import ChatRequest, MessageOut, StartChatRequest
from chatvault.models.domain import MessageRecord

Event = tuple[str, Any]  # (SSE event name, its JSON data): session, message, delta, reply, error
# How often a streamed reply looks whether the person pressed Stop (one GetItem of the session item)
STOP_CHECK_S = 1.0
# Time kept for the reply's write when the invocation's end draws near: the model is then closed and
# the text so far stored (`attributes.stop_reason: time_limit`), rather than the function stopped
WRITE_RESERVE_S = 4.0
TIME_LIMIT = "time_limit"


def chat_events(raw_session_id: str | None, request: ChatRequest, caller: Caller) -> Iterator[Event]:
    """The chat as events, for Server-Sent Events: `session` (only when this call created it), the
    stored user `message`, the model's text as `delta`s as it writes it, then the stored `reply`, or
    an `error` once the user message is stored (the usual error body). A failure before anything is
    stored is raised by the first `next()` (the HTTP answer is then the usual error response). A replay
    of a stored pair sends `message` and `reply`, no deltas. The consumer must run the iterator to its
    end even when its client has gone: the reply is then still stored, once."""
    if raw_session_id is None and isinstance(request, StartChatRequest) and request.session_id is None:
        session, own = open_session(caller)
        yield "session", session.model_dump(mode="json")
        try:
            begun = begin(session.session_id, request, own)
        except ChatVaultError as exc:
            yield "error", exc
            return
    else:
        session_id = (
            session_id_from_path(raw_session_id)
            if raw_session_id is not None
            else str(getattr(request, "session_id", ""))
        )
        begun = begin(session_id, request, caller)
    if begun.found is not None:
        yield "message", MessageOut.of(begun.user).model_dump(mode="json")
        yield "reply", MessageOut.of(begun.found).model_dump(mode="json")
        return
    try:  # the guard is this call's from here: whatever happens, it is freed or the reply's write frees it
        yield "message", MessageOut.of(begun.user).model_dump(mode="json")
        reply = yield from _stream(begun, get_settings())
    except ChatVaultError as exc:
        free_guard(begun.session_id, begun.lock)
        yield "error", exc
        return
    except BaseException:
        free_guard(begun.session_id, begun.lock)
        raise
    yield "reply", MessageOut.of(reply).model_dump(mode="json")


def _stop_asked(begun: Begun) -> bool:
    """A failed look (throttled, slow) is not a Stop: the reply goes on, and the next look may see it."""
    try:
        return replies.stop_asked(begun.session_id, begun.lock)
    except ChatVaultError:
        logger.warning("stop check failed; the reply goes on")
        return False


def _stream(begun: Begun, settings: Settings) -> Generator[Event, None, MessageRecord]:
    """The model's deltas as it writes them, then the reply stored. Every STOP_CHECK_S it reads the
    session item: a Stop (POST .../chat/stop) closes the model's stream, and the text so far is stored
    with `attributes.stop_reason: stopped` (nothing written yet: ReplyStoppedError, nothing stored).
    The model's timeout bounds each chunk; the invocation's end bounds the whole: WRITE_RESERVE_S
    before it the model is closed and the text so far stored (`time_limit`)."""
    started = time.monotonic()
    written: list[str] = []
    reply: ModelReply | None = None
    ended_by = STOPPED
    check_at = started + STOP_CHECK_S
    model = llm.stream(model_request(begun, settings))
    try:
        for item in model:
            if isinstance(item, ModelReply):
                reply = item
                break
            written.append(item)
            yield "delta", {"text": item}
            left = deadline.remaining_s()
            if left is not None and left < WRITE_RESERVE_S:
                ended_by = TIME_LIMIT
                break
            if time.monotonic() >= check_at:
                check_at = time.monotonic() + STOP_CHECK_S
                if _stop_asked(begun):
                    break
    except ChatVaultError as exc:
        metrics.add_metric(name="ModelFailures", unit="Count", value=1)
        logger.info("no reply stored", extra={"error_type": type(exc).__name__, "attempt": begun.attempt})
        raise
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()  # a Stop: the model stops writing (and billing)
    if reply is None:  # stopped, or out of time
        if not "".join(written).strip():
            raise ReplyStoppedError() if ended_by == STOPPED else ModelTimeoutError()
        reply = ModelReply(
            text="".join(written),
            model=settings.model_id,
            input_tokens=0,
            output_tokens=0,
            stop_reason=ended_by,
        )
    return store_reply(begun, reply, int((time.monotonic() - started) * 1000), settings)
