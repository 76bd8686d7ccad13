"""A streamed chat (ChatVault.chat_stream and start_chat_stream): the answer to a chat request sent with
`Accept: text/event-stream`, read as Server-Sent Events as they arrive.

The service sends `session` (only when POST /api/v1/chat created the session), the stored user
`message`, a `delta` (`{"text": ...}`) for each piece of text as the model writes it, then the stored
`reply`, or an `error` (the usual error body). A ChatStream iterates over the deltas' texts and, once
done, holds the stored messages. An answer that is not an event stream (a deployment or a proxy that
ignores Accept answers the JSON form) is read as the JSON form: the same messages, no deltas."""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import requests

from chatvault_client.errors import ChatVaultClientError, TransportError, error_of_event
from chatvault_client.models import ChatPair, CreatedSession, Message, StartedChat

P = TypeVar("P", ChatPair, StartedChat)
EVENT_STREAM = "text/event-stream"
_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event: its name (`message` when it has none) and its data lines, joined."""

    name: str
    data: str


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a byte stream, each as soon as its end has arrived. A line ends at CRLF, LF or CR
    (a CR at the end of a chunk waits for the next one, which may start with its LF)."""
    buffer = b""
    first = True
    for chunk in chunks:
        buffer += chunk
        start = 0
        for end in _EOL.finditer(buffer):
            if end.group() == b"\r" and end.end() == len(buffer):
                break
            line = buffer[start : end.start()].decode("utf-8", errors="replace")
            if first:
                line, first = line.removeprefix("\ufeff"), False
            yield line
            start = end.end()
        buffer = buffer[start:]
    # what is left has no line end: an event it would belong to is never dispatched


def events(source: Iterable[str]) -> Iterator[Event]:
    """The events of the lines, as the `text/event-stream` format reads them: `event:` names the event,
    its `data:` lines are joined with newlines, a blank line dispatches it (an event without data is
    not dispatched); comments (lines starting with `:`), `id:`, `retry:` and unknown fields are
    ignored; one space after the colon is not part of the value. An event the stream ends inside is
    dropped."""
    name = ""
    data: list[str] = []
    for line in source:
        if not line:
            if data:
                yield Event(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


# Generic rather than PEP 695's `class ChatStream[P: ...]`: the client supports Python 3.11
class ChatStream(Generic[P]):  # noqa: UP046
    """A chat being answered: iterate over it for the reply's text as the model writes it (each item a
    delta, a str); when the iteration ends, `message` and `reply` are the stored user message and the
    stored reply (the reply exactly as GET .../messages returns it) and, for start_chat_stream,
    `session` is the new session (with its `session_token` in anonymous mode: keep it). `result()`
    reads what is left and returns the pair (ChatPair, or StartedChat for start_chat_stream).

    `streamed` says whether the answer was an event stream; when it was not (the JSON form: a proxy or a
    deployment that ignores Accept), there are no deltas, only the pair. Where the service streams: on
    AWS the StreamApiUrl (give it as the client's `stream_url`); the HTTP API (ApiUrl) answers the same
    events, all at once when the reply is complete; `make dev` streams on its one port. A repeat of a
    chat whose pair is stored (the same message_id) has no deltas either.

    Nothing is retried once the answer has begun: deltas already given cannot be taken back. An `error`
    event (the model failed, timed out, or was stopped before it wrote anything: ConflictError
    `reply_stopped`) raises the ApiError the JSON form raises for its code (see errors.py for its
    status), carrying `message_id`, the stored `user_message` and, for start_chat_stream, the new
    `session`; a connection lost midway raises TransportError, carrying the same. The user message stays
    stored: calling chat_stream again with the same message_id (on `error.session`, with its token, for
    start_chat_stream) completes the pair: a new reply streamed, or the stored one, without deltas.

    Close it (or use it as a context manager) when leaving before its end. That does not stop the
    reply, which the service still stores: ChatVault.stop does."""

    def __init__(
        self, response: requests.Response, answer: type[P], message_id: str, attempts: int = 1
    ) -> None:
        self.message_id = message_id
        self.session: CreatedSession | None = None
        self.message: Message | None = None
        self.reply: Message | None = None
        self.streamed = EVENT_STREAM in response.headers.get("Content-Type", "").lower()
        self.attempts = attempts  # the requests it took to get the answer (retries before it began)
        self._response = response
        self._answer: type[P] = answer
        self._texts: list[str] = []
        self._error: ChatVaultClientError | None = None
        self._run = self._deltas()

    @property
    def text(self) -> str:
        """The deltas' texts so far, joined. Keep `reply.content`, the stored text, which may differ: a
        replay has no deltas, and a reply longer than a message may be is stored cut."""
        return "".join(self._texts)

    def __iter__(self) -> ChatStream[P]:
        return self

    def __next__(self) -> str:
        return next(self._run)

    def result(self) -> P:
        """The stored pair, once the rest of the answer is read (deltas not iterated over are dropped).
        Raises what the iteration raised, if it did (TransportError if the stream was closed first)."""
        for _ in self:
            pass
        if self._error is not None:
            raise self._error
        if self.reply is None:  # closed before its end
            raise self._failed(TransportError("The stream was closed before its reply came."))
        pair: P = self._answer.model_validate(
            {"session": self.session, "message": self.message, "reply": self.reply}
        )
        return pair

    def close(self) -> None:
        """Stop reading (the service still stores the reply: ChatVault.stop stops it)."""
        self._run.close()
        self._response.close()

    def __enter__(self) -> ChatStream[P]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _deltas(self) -> Generator[str]:
        try:
            if not self.streamed:
                self._read_json()
                return
            for event in events(lines(self._response.iter_content(chunk_size=None))):
                data = json.loads(event.data)
                if event.name == "delta":
                    text = data.get("text") if isinstance(data, dict) else None
                    if not isinstance(text, str):
                        raise ValueError("a delta without its text")
                    self._texts.append(text)
                    yield text
                elif event.name == "message":
                    self.message = Message.model_validate(data)
                elif event.name == "session":
                    self.session = CreatedSession.model_validate(data)
                elif event.name == "reply":
                    self.reply = Message.model_validate(data)
                    return
                elif event.name == "error":
                    raise error_of_event(data)
                # another event: one a newer service sends, ignored
            raise TransportError("The answer ended before the reply came; the same message_id completes it.")
        except ChatVaultClientError as exc:
            self._failed(exc)
            raise
        except requests.RequestException as exc:
            lost = self._failed(TransportError(f"The answer was cut off: {exc}"))
            raise lost from exc
        except ValueError as exc:  # not JSON, or not the model (pydantic's ValidationError is one)
            # the cause (chained) may quote the conversation: the message does not
            unread = self._failed(TransportError(f"The answer could not be read ({type(exc).__name__})."))
            raise unread from exc
        finally:
            self._response.close()

    def _read_json(self) -> None:
        pair: Any = self._answer.model_validate(self._response.json())
        self.message, self.reply = pair.message, pair.reply
        if isinstance(pair, StartedChat):
            self.session = pair.session

    def _failed(self, error: ChatVaultClientError) -> ChatVaultClientError:
        error.message_id = self.message_id
        error.session = error.session or self.session
        error.user_message = error.user_message or self.message
        error.attempts = error.attempts or self.attempts
        self._error = error
        return error
