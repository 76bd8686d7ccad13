"""The client. One object per credential:

    bot = ChatVault("https://api.example", IamAuth(region="eu-west-1"))      # the bot's back end
    for message in bot.messages(session_id):
        ...
    bot.append(session_id, "assistant", reply)                               # any role, idempotent

    started = ChatVault("https://api.example").start_chat("Hello")          # a new session, the reply
    user = ChatVault("https://api.example").with_token(started.session.session_token)
    pair = user.chat(started.session.session_id, "And then?")               # the message, the reply

Retries: 429 and 503 (nothing was written) up to `retries` times, waiting what Retry-After says
(capped by `max_wait`); a network failure is retried only where a repeat is safe: reads, and appends,
which always carry a message_id (a repeat answers the stored message and stores nothing).

A chat always carries a message_id too, and a repeat with it is the same chat (the service stores its
pair once, and completes it when the user message was stored without a reply), so a chat is also
retried, with the same message_id, on a network failure, on 502 and 504 (the model failed or was too
slow) and on 409 reply_in_progress (a reply of the session, maybe this chat's own earlier attempt, is
being made; without a Retry-After the wait starts at 2 s, as a reply takes seconds), never on another
4xx. start_chat's own request (POST /chat, which creates a session) is repeated only on a 429 or 503
that names no session: a repeat of one that did would create a second session. Once a failure names
the new session, the retries go to that session's chat route (with its token, with the same
message_id), and an error raised after that carries the session in `.session`, so its token is not
lost. Every retry counts against the same `retries`. An error a chat call raises carries its
`message_id`.

The streamed chat (chat_stream, start_chat_stream) sends the same request with `Accept:
text/event-stream` and returns a ChatStream at once: iterate over it for the reply's text as the model
writes it, then read `.reply` (or call `.result()` for the pair). Its requests go to `stream_url` (on
AWS the stack's StreamApiUrl, which streams; the HTTP API, ApiUrl, answers the same events all at once;
default: base_url, as `make dev` streams on its one port). Its opening request is retried as chat()'s
(start_chat's) own is, as nothing has been given yet; once the answer has begun nothing is retried
(deltas cannot be taken back): a failure is raised with the message_id, and a new chat_stream with it
completes the pair (see ChatStream). `stop(session_id)` stops a streamed reply being made.

    stream = user.chat_stream(session_id, "Tell me more")
    for text in stream:
        print(text, end="", flush=True)
    stream.reply                                                             # the stored reply

`export(session_id)` is the whole conversation (a person's right of access): the export as JSON (a
dict, the `chatvault.export/1` document) or, with format="markdown", the transcript. An export too
large for one answer comes as a link to its sealed object; export() follows it and opens it
(`open_export`, which needs `cryptography`: `pip install chatvault-client[export]`), so the result is
the export either way. open_export(link) opens a link got otherwise (a raw GET .../export)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeVar, overload
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel

from chatvault_client.auth import Auth, BearerAuth, NoAuth, SessionTokenAuth
from chatvault_client.errors import ApiError, ChatVaultClientError, TransportError, error_of
from chatvault_client.export import opened
from chatvault_client.models import (
    AppendMessageRequest,
    ChatPair,
    ChatRequest,
    CreatedSession,
    CreateSessionRequest,
    CreateUploadRequest,
    DeleteReceipt,
    ExportLink,
    FeedbackRequest,
    Message,
    MessageMetadata,
    MessagePage,
    RevokedShare,
    Role,
    Session,
    SessionPage,
    Share,
    SharedConversation,
    SharePage,
    StartChatRequest,
    StartedChat,
    StopReply,
    UpdateSessionRequest,
    Upload,
)
from chatvault_client.stream import EVENT_STREAM, ChatStream, P

T = TypeVar("T", bound=BaseModel)
RETRIED_STATUSES = (429, 503)  # nothing was written: any call
CHAT_RETRIED_STATUSES = (502, 504)  # the model failed, the user message stays stored: a chat's repeat
# A chat's answer waits for the model: on AWS up to ~28 s (the model gets 22 s, the chat function
# at most 28 s, API Gateway 29 s). A shorter read timeout gives up on a chat that is still being
# answered, and its retry would only meet 409 reply_in_progress; so a chat reads for at least this long.
CHAT_READ_TIMEOUT = 30.0


class ChatVault:
    def __init__(
        self,
        base_url: str,
        auth: Auth | None = None,
        *,
        retries: int = 3,
        max_wait: float = 30.0,
        timeout: float = 10.0,
        http: requests.Session | None = None,
        stream_url: str | None = None,
    ) -> None:
        # the service's root, or its API base (`…/api/v1`, as docs/API.md and the JS client name it)
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
        # where chat_stream and start_chat_stream go: on AWS the stack's StreamApiUrl (`…/v1`, the same
        # `/api/v1/...` paths after it), which streams; default: base_url
        self.stream_url = (stream_url or base_url).rstrip("/").removesuffix("/api/v1")
        self.auth = auth or NoAuth()
        self.retries = retries
        self.max_wait = max_wait
        self.timeout = timeout
        self.http = http or requests.Session()

    # -- credentials -------------------------------------------------------------------------------

    def with_token(self, token: str) -> ChatVault:
        """The same client for an anonymous session's token."""
        return self._with(SessionTokenAuth(token))

    def _with(self, auth: Auth) -> ChatVault:
        return ChatVault(
            self.base_url,
            auth,
            retries=self.retries,
            max_wait=self.max_wait,
            timeout=self.timeout,
            http=self.http,
            stream_url=self.stream_url,
        )

    def _sessions(self) -> str:
        return "/api/v1/service/sessions" if self.auth.service else "/api/v1/sessions"

    # -- sessions ----------------------------------------------------------------------------------

    def create_session(
        self,
        *,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
        session_id: str | None = None,
        temporary: bool = False,
        retention_hours: int | None = None,
    ) -> CreatedSession:
        """A new session; anonymous: its `session_token` is in the answer, this once. `temporary`: a
        temporary conversation (kept TemporaryRetentionHours after its last activity, never listed,
        never claimed). `retention_hours`: keep it less long than the deployment's RetentionHours."""
        body = CreateSessionRequest(
            session_id=session_id,
            title=title,
            metadata=metadata,
            temporary=True if temporary else None,
            retention_hours=retention_hours,
        )
        return self._call("POST", "/api/v1/sessions", CreatedSession, body=body, safe=False)

    def get_session(self, session_id: str) -> Session:
        return self._call("GET", f"{self._sessions()}/{session_id}", Session)

    def update_session(
        self,
        session_id: str,
        *,
        title: str | None = None,
        metadata: dict[str, str] | None = None,
        end: bool = False,
        retention_hours: int | None = None,
    ) -> Session:
        """PATCH: only what is given changes. `retention_hours` applies at once: messages and uploads
        older than it are deleted (docs/API.md, "Retention per conversation")."""
        fields: dict[str, Any] = {}
        if title is not None:
            fields["title"] = title
        if metadata is not None:
            fields["metadata"] = metadata
        if end:
            fields["status"] = "ended"
        if retention_hours is not None:
            fields["retention_hours"] = retention_hours
        body = UpdateSessionRequest.model_validate(fields)
        return self._call("PATCH", f"/api/v1/sessions/{session_id}", Session, body=body, safe=False)

    def set_feedback(
        self, session_id: str, message_id: str, rating: Literal["up", "down"], comment: str | None = None
    ) -> Message:
        """Rate a reply (an assistant message), replacing its previous feedback; the message as it now
        stands. A repeat sets the same feedback again, so it is retried like a read."""
        body = FeedbackRequest(rating=rating, comment=comment)
        path = f"/api/v1/sessions/{session_id}/messages/{message_id}/feedback"
        return self._call("PUT", path, Message, body=body, safe=True)

    def clear_feedback(self, session_id: str, message_id: str) -> Message:
        """Remove a reply's feedback (none to remove is no error)."""
        path = f"/api/v1/sessions/{session_id}/messages/{message_id}/feedback"
        return self._call("DELETE", path, Message, safe=True)

    def delete_session(self, session_id: str) -> DeleteReceipt:
        """The panic button: the session, its messages and files, gone for good."""
        return self._call("DELETE", f"/api/v1/sessions/{session_id}", DeleteReceipt, safe=False)

    def sessions(self, page_size: int = 50) -> Iterator[Session]:
        """The signed-in user's sessions, newest activity first (jwt and both modes)."""
        cursor: str | None = None
        while True:
            query = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", "/api/v1/sessions", SessionPage, query=query)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def claim(self, session_id: str, session_token: str) -> Session:
        """AuthMode=both, with a BearerAuth: make an anonymous session this user's."""
        if not isinstance(self.auth, BearerAuth):
            raise TypeError("claim needs a BearerAuth client (the signed-in user)")
        claimer = self._with(BearerAuth(self.auth.token, session_token=session_token))
        return claimer._call("POST", f"/api/v1/sessions/{session_id}/claim", Session, safe=True)

    # -- messages ----------------------------------------------------------------------------------

    def append(
        self,
        session_id: str,
        role: Role,
        content: str,
        *,
        metadata: MessageMetadata | dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Message:
        """Append one message. It always carries a message_id (a new UUID unless given), so a retry
        after a lost answer stores it once."""
        body = AppendMessageRequest(
            role=role,
            content=content,
            message_id=message_id or str(uuid.uuid4()),
            metadata=_metadata(metadata),
        )
        return self._call("POST", f"{self._sessions()}/{session_id}/messages", Message, body=body, safe=True)

    def messages(
        self, session_id: str, *, order: Literal["asc", "desc"] = "asc", page_size: int = 50
    ) -> Iterator[Message]:
        """Every message of the session, a page (one request) at a time."""
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {"limit": page_size, "order": order}
            if cursor:
                query["cursor"] = cursor
            page = self._call("GET", f"{self._sessions()}/{session_id}/messages", MessagePage, query=query)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- the chat ---------------------------------------------------------------------------------

    def chat(
        self,
        session_id: str,
        content: str,
        message_id: str | None = None,
        *,
        metadata: MessageMetadata | dict[str, Any] | None = None,
    ) -> ChatPair:
        """Send a user message and get the model's reply, both stored. It always carries a message_id
        (a new UUID unless given), and every retry (see the module's docstring) sends the same one, so
        the pair is stored once. An end user's call (a session token or a bearer token)."""
        self._end_user("chat")
        body = ChatRequest(
            content=content, message_id=message_id or str(uuid.uuid4()), metadata=_metadata(metadata)
        )
        try:
            return self._chat(session_id, body)
        except ChatVaultClientError as exc:
            exc.message_id = body.message_id
            raise

    def start_chat(
        self,
        content: str,
        message_id: str | None = None,
        *,
        metadata: MessageMetadata | dict[str, Any] | None = None,
    ) -> StartedChat:
        """Start a conversation without a session: a new session (anonymous mode: its `session_token`,
        this once), the user message and the reply. If the chat fails after the session was created,
        it is retried on that session's chat route with the same message_id; an error raised then
        carries the session (`.session`, token included) and, when known, the stored `.user_message`:
        retry with `with_token(error.session.session_token).chat(error.session.session_id, content,
        message_id)`."""
        self._end_user("start_chat")
        message_id = message_id or str(uuid.uuid4())
        try:
            return self._start_chat(content, message_id, _metadata(metadata))
        except ChatVaultClientError as exc:
            exc.message_id = message_id
            raise

    def _start_chat(self, content: str, message_id: str, meta: MessageMetadata | None) -> StartedChat:
        body = StartChatRequest(content=content, message_id=message_id, metadata=meta)
        try:
            return self._call(
                "POST", "/api/v1/chat", StartedChat, body=body, safe=False, timeout=self._chat_timeout()
            )
        except ApiError as failed:
            session = failed.session
            if session is None or failed.attempts > self.retries or not _retried(failed, chat=True):
                raise
            time.sleep(self._wait(failed, failed.attempts))
            first = failed
        owner = self.with_token(session.session_token) if session.session_token else self
        again = ChatRequest(content=content, message_id=message_id, metadata=meta)
        try:
            pair = owner._chat(session.session_id, again, retried=first.attempts)
        except ChatVaultClientError as exc:
            exc.session = session
            exc.user_message = exc.user_message or first.user_message
            raise
        return StartedChat(session=session, message=pair.message, reply=pair.reply)

    def chat_stream(
        self,
        session_id: str,
        content: str,
        message_id: str | None = None,
        *,
        metadata: MessageMetadata | dict[str, Any] | None = None,
    ) -> ChatStream[ChatPair]:
        """chat(), streamed: the request goes to `stream_url` at once, and the ChatStream returned gives
        the reply's text as the model writes it, then holds the stored `message` and `reply` (see
        ChatStream). A failure before anything is stored (the session does not exist, a 409
        message_id_conflict...) is raised here, after the retries chat() would make; once the answer
        has begun nothing is retried: call chat_stream again with the error's `message_id`."""
        self._end_user("chat_stream")
        body = ChatRequest(
            content=content, message_id=message_id or str(uuid.uuid4()), metadata=_metadata(metadata)
        )
        path = f"/api/v1/sessions/{session_id}/chat"
        return self._stream(path, body, ChatPair, safe=True, chat=True)

    def start_chat_stream(
        self,
        content: str,
        message_id: str | None = None,
        *,
        metadata: MessageMetadata | dict[str, Any] | None = None,
    ) -> ChatStream[StartedChat]:
        """start_chat(), streamed: a new session (the ChatStream's `session`, known from the first
        event: with its `session_token` in anonymous mode, this once), then the user message, the
        reply's text as it is written and the stored reply. Its request is repeated only on a 429 or
        503 (it creates a session). A failure after the session was created is raised with it
        (`error.session`, token included) and the `message_id`: complete the pair with
        `with_token(error.session.session_token).chat_stream(error.session.session_id, content,
        error.message_id)`."""
        self._end_user("start_chat_stream")
        message_id = message_id or str(uuid.uuid4())
        body = StartChatRequest(content=content, message_id=message_id, metadata=_metadata(metadata))
        return self._stream("/api/v1/chat", body, StartedChat, safe=False, chat=False)

    def stop(self, session_id: str) -> bool:
        """The person's Stop: ask the reply being made in the session to stop. True when one was being
        made: a streamed one (chat_stream, start_chat_stream) then ends within about a second with a
        reply holding the text so far (`metadata.attributes["stop_reason"] == "stopped"`), or, when
        the model had written nothing yet, with ConflictError `reply_stopped` (nothing stored; the same
        message_id asks again). A reply of chat() (the JSON form) is not cut short. False: no reply
        was being made, nothing changed."""
        self._end_user("stop")
        path = f"/api/v1/sessions/{session_id}/chat/stop"
        return self._call("POST", path, StopReply, safe=True).stopping

    def _stream(
        self, path: str, body: ChatRequest, answer: type[P], *, safe: bool, chat: bool
    ) -> ChatStream[P]:
        message_id = str(body.message_id)
        try:
            response, attempts = self._send(
                "POST",
                self.stream_url + path,
                body=body,
                safe=safe,
                chat=chat,
                timeout=self._chat_timeout(),
                stream=True,
            )
        except ChatVaultClientError as exc:
            exc.message_id = message_id
            raise
        return ChatStream(response, answer, message_id, attempts)

    def _chat(self, session_id: str, body: ChatRequest, *, retried: int = 0) -> ChatPair:
        return self._call(
            "POST",
            f"/api/v1/sessions/{session_id}/chat",
            ChatPair,
            body=body,
            safe=True,
            chat=True,
            timeout=self._chat_timeout(),
            retried=retried,
        )

    def _chat_timeout(self) -> tuple[float, float]:
        """(connect, read): a chat reads for as long as the service may take to answer it (a stream: the
        longest wait for its next part, all of it where the answer comes at once)."""
        return (self.timeout, max(self.timeout, CHAT_READ_TIMEOUT))

    def _end_user(self, what: str) -> None:
        if self.auth.service:
            raise TypeError(f"{what} is an end user's call: the service writer has no chat route")

    # -- share links -------------------------------------------------------------------------------

    def create_share(self, session_id: str) -> Share:
        """A read-only snapshot of the conversation as it is now, behind an unguessable link."""
        return self._call("POST", f"/api/v1/sessions/{session_id}/shares", Share, safe=False)

    def shares(self, session_id: str, page_size: int = 50) -> Iterator[Share]:
        """The session's live share links, oldest first."""
        cursor: str | None = None
        while True:
            query = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", f"/api/v1/sessions/{session_id}/shares", SharePage, query=query)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def revoke_share(self, session_id: str, share_id: str) -> RevokedShare:
        """Revoke a link: from now on it is 404 (`share_not_found`)."""
        path = f"/api/v1/sessions/{session_id}/shares/{share_id}"
        return self._call("DELETE", path, RevokedShare, safe=True)

    def shared(self, share_id: str, limit: int = 50, cursor: str | None = None) -> SharedConversation:
        """A page of a shared conversation, as anyone holding the link reads it: no credentials are
        sent, whatever this client holds."""
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        reader = self._with(NoAuth())
        return reader._call("GET", f"/api/v1/shared/{share_id}", SharedConversation, query=query)

    # -- uploads -----------------------------------------------------------------------------------

    def create_upload(self, session_id: str, *, filename: str, content_type: str, size: int) -> Upload:
        body = CreateUploadRequest(filename=filename, content_type=content_type, size=size)
        return self._call("POST", f"/api/v1/sessions/{session_id}/uploads", Upload, body=body, safe=False)

    def upload(self, session_id: str, *, filename: str, content_type: str, data: bytes) -> Upload:
        """Ask for a presigned POST and send the file with it."""
        form = self.create_upload(session_id, filename=filename, content_type=content_type, size=len(data))
        try:
            answer = self.http.post(
                form.url,
                data=form.fields,
                files={"file": (filename, data, content_type)},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransportError(str(exc)) from exc
        if answer.status_code >= 300:
            raise TransportError(f"the bucket refused the upload: {answer.status_code}")
        return form

    # -- export ----------------------------------------------------------------------------------

    @overload
    def export(self, session_id: str, format: Literal["json"] = "json") -> dict[str, Any]: ...

    @overload
    def export(self, session_id: str, format: Literal["markdown"]) -> str: ...

    def export(self, session_id: str, format: Literal["json", "markdown"] = "json") -> dict[str, Any] | str:
        """GET /sessions/{id}/export: the export (the JSON document, or the Markdown transcript). A link
        answer (an export too large for one answer) is followed and opened: see open_export."""
        self._end_user("export")
        reply, _ = self._send(
            "GET", f"{self.base_url}/api/v1/sessions/{session_id}/export", query={"format": format}
        )
        if not reply.headers.get("content-type", "").startswith("application/json"):
            return reply.text  # the transcript, inline
        answer: dict[str, Any] = reply.json()
        if "download_url" in answer:
            opened_export: dict[str, Any] | str = self.open_export(answer, format=format)
            return opened_export
        return answer

    def open_export(
        self,
        link: ExportLink | Mapping[str, Any],
        *,
        format: Literal["json", "markdown"] | None = None,
    ) -> Any:
        """The export behind a link (`{download_url, expires_at, encryption}`): downloaded (no
        credential is sent: the link is presigned) and opened chunk by chunk with the link's key. The
        JSON document as a dict, or the Markdown transcript as text: as `format` says, else as the
        object's name ends (`.json`, `.md`). A link that no longer serves (expired, or its object
        erased) raises TransportError; an object that does not open under the key, ExportBrokenError."""
        if not isinstance(link, ExportLink):
            link = ExportLink.model_validate(link)
        try:
            answer = self.http.get(link.download_url, stream=True, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransportError(str(exc)) from exc
        with answer:
            if answer.status_code >= 300:
                raise TransportError(f"the export's link did not serve it: {answer.status_code}")
            try:
                pieces = answer.iter_content(chunk_size=1 << 16)
                data = b"".join(opened(pieces, link.encryption)) if link.encryption else answer.content
            except requests.RequestException as exc:
                raise TransportError(str(exc)) from exc
        text = data.decode("utf-8")
        markdown = format == "markdown" if format else urlsplit(link.download_url).path.endswith(".md")
        return text if markdown else json.loads(text)

    # -- the one request path ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        answer: type[T],
        *,
        body: BaseModel | None = None,
        query: dict[str, Any] | None = None,
        safe: bool | None = None,
        chat: bool = False,
        timeout: float | tuple[float, float] | None = None,
        retried: int = 0,
    ) -> T:
        """`safe`: a network failure may be retried (default: GETs); `chat`: a repeat of the body is
        the same chat (see the module's docstring); `retried`: the retries this call's caller already
        made (start_chat's first request)."""
        reply, _ = self._send(
            method,
            self.base_url + path,
            body=body,
            query=query,
            safe=safe,
            chat=chat,
            timeout=timeout,
            retried=retried,
        )
        return answer.model_validate(_payload(reply))

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: BaseModel | None = None,
        query: dict[str, Any] | None = None,
        safe: bool | None = None,
        chat: bool = False,
        timeout: float | tuple[float, float] | None = None,
        retried: int = 0,
        stream: bool = False,
    ) -> tuple[requests.Response, int]:
        """The answer below 400 and the requests it took, after the retries `_call` describes; an
        answer of 400 and above is raised. `stream`: ask for the events (`Accept: text/event-stream`),
        and return the answer before its body is read."""
        data = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        retry_network = method == "GET" if safe is None else safe
        attempt = retried
        while True:
            headers = {
                **({"Content-Type": "application/json"} if data else {}),
                **({"Accept": EVENT_STREAM} if stream else {}),
                **self.auth.headers(),
            }
            request = requests.Request(method, url, params=query, data=data, headers=headers)
            prepared = self.auth.sign(self.http.prepare_request(request))
            try:
                reply = self.http.send(prepared, timeout=timeout or self.timeout, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not retry_network or attempt >= self.retries:
                    lost = TransportError(str(exc))
                    lost.attempts = attempt + 1
                    raise lost from exc
                attempt += 1
                time.sleep(min(self.max_wait, 0.2 * 2**attempt))
                continue
            if reply.status_code < 400:
                return reply, attempt + 1
            payload = _payload(reply)
            error = error_of(reply.status_code, payload, reply.headers.get("Retry-After"))
            # an answer that names a session this call created is never repeated on its route
            if error.session is None and attempt < self.retries and _retried(error, chat=chat):
                attempt += 1
                time.sleep(self._wait(error, attempt))
                continue
            error.attempts = attempt + 1
            raise error

    def _wait(self, error: ApiError, attempt: int) -> float:
        if error.retry_after is not None:
            seconds = error.retry_after
        elif error.code == "reply_in_progress":  # a reply takes seconds: 2, 4, 8...
            seconds = 2.0**attempt
        else:
            seconds = 0.2 * 2**attempt
        return max(0.0, min(self.max_wait, seconds))


def _retried(error: ApiError, *, chat: bool) -> bool:
    if error.status in RETRIED_STATUSES:
        return True
    return chat and (error.status in CHAT_RETRIED_STATUSES or error.code == "reply_in_progress")


def _payload(reply: requests.Response) -> Any:
    """The answer's JSON; None when it has none (a proxy's HTML error page: the error by its status)."""
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:
        if reply.status_code < 400:
            raise
        return None


def _metadata(metadata: MessageMetadata | dict[str, Any] | None) -> MessageMetadata | None:
    return MessageMetadata.model_validate(metadata) if isinstance(metadata, dict) else metadata


__all__ = ["ApiError", "ChatStream", "ChatVault"]
