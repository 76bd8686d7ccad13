"""Server-Sent Events for the chat (logic/chat.py `chat_events`): each event as the bytes the
`text/event-stream` format wants, an `error` event carrying the usual error body (http/errors.py), and
a failure nobody planned for as `internal_error`, never a stack trace."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from chatvault.core.errors import ChatVaultError
from chatvault.core.observability import logger
from chatvault.http import errors

CONTENT_TYPE = "text/event-stream; charset=utf-8"
# No cache may keep a conversation; no proxy should hold events back to batch them
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def wants_events(accept: str | None) -> bool:
    """The client asked for the streamed form (`Accept: text/event-stream`)."""
    return "text/event-stream" in (accept or "").lower()


def encode(event: str, data: Any) -> bytes:
    """One event; JSON data has no raw newline (and the format's only line ends are CR and LF), so one
    `data:` line carries it, in UTF-8 as written (not escaped: 2-4 bytes a character, not 6-12)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def error_data(exc: ChatVaultError, request_id: str) -> dict[str, Any]:
    """The usual error body, and beside it what the JSON form says in its status line and headers: the
    `status` it would have answered, and `retry_after` (seconds) where it would send Retry-After."""
    response = errors.from_domain(exc, request_id)
    body: dict[str, Any] = json.loads(str(response.body))
    body["status"] = response.status_code
    if "Retry-After" in response.headers:
        body["retry_after"] = int(str(response.headers["Retry-After"]))
    return body


def stream(events: Iterable[tuple[str, Any]], request_id: str) -> Iterator[bytes]:
    """The events as bytes; an `error` event's data is the error body. An unexpected failure ends the
    stream with an `internal_error` event (logged, as the resolver logs one)."""
    try:
        for name, data in events:
            if name == "error":
                yield encode("error", error_data(data, request_id))
            else:
                yield encode(name, data)
    except ChatVaultError as exc:
        yield encode("error", error_data(exc, request_id))
    except Exception as exc:
        logger.exception("unhandled error while streaming", extra={"error_type": type(exc).__name__})
        yield encode("error", json.loads(str(errors.internal(request_id).body)))
