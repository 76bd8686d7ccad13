"""The client. One object per credential:

    bot = ChatVault("https://api.example", IamAuth(region="eu-west-1"))      # the bot's back end
    for message in bot.messages(session_id):
        ...
    bot.append(session_id, "assistant", reply)                               # any role, idempotent

Retries: 429 and 503 (nothing was written) up to `retries` times, waiting what Retry-After says
(capped by `max_wait`); a network failure is retried only where a repeat is safe: reads, and appends,
which always carry a message_id (a repeat answers the stored message and stores nothing)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal, TypeVar

import requests
from pydantic import BaseModel

from chatvault_client.auth import Auth, BearerAuth, NoAuth, SessionTokenAuth
from chatvault_client.errors import ApiError, TransportError, error_of
from chatvault_client.models import (
    AppendMessageRequest,
    CreatedSession,
    CreateSessionRequest,
    CreateUploadRequest,
    DeleteReceipt,
    Message,
    MessageMetadata,
    MessagePage,
    Role,
    Session,
    SessionPage,
    UpdateSessionRequest,
    Upload,
)

T = TypeVar("T", bound=BaseModel)
RETRIED_STATUSES = (429, 503)


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
    ) -> None:
        # the service's root, or its API base (`…/api/v1`, as docs/API.md and the JS client name it)
        self.base_url = base_url.rstrip("/").removesuffix("/api/v1")
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
    ) -> CreatedSession:
        """A new session; anonymous: its `session_token` is in the answer, this once."""
        body = CreateSessionRequest(session_id=session_id, title=title, metadata=metadata)
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
    ) -> Session:
        fields: dict[str, Any] = {}
        if title is not None:
            fields["title"] = title
        if metadata is not None:
            fields["metadata"] = metadata
        if end:
            fields["status"] = "ended"
        body = UpdateSessionRequest.model_validate(fields)
        return self._call("PATCH", f"/api/v1/sessions/{session_id}", Session, body=body, safe=False)

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
        meta = MessageMetadata.model_validate(metadata) if isinstance(metadata, dict) else metadata
        body = AppendMessageRequest(
            role=role, content=content, message_id=message_id or str(uuid.uuid4()), metadata=meta
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
    ) -> T:
        data = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        retry_network = method == "GET" if safe is None else safe
        attempt = 0
        while True:
            request = requests.Request(
                method,
                self.base_url + path,
                params=query,
                data=data,
                headers={**({"Content-Type": "application/json"} if data else {}), **self.auth.headers()},
            )
            prepared = self.auth.sign(self.http.prepare_request(request))
            try:
                reply = self.http.send(prepared, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not retry_network or attempt >= self.retries:
                    raise TransportError(str(exc)) from exc
                attempt += 1
                time.sleep(min(self.max_wait, 0.2 * 2**attempt))
                continue
            if reply.status_code in RETRIED_STATUSES and attempt < self.retries:
                attempt += 1
                time.sleep(self._wait(reply, attempt))
                continue
            payload = reply.json() if reply.content else None
            if reply.status_code >= 400:
                raise error_of(reply.status_code, payload)
            return answer.model_validate(payload)

    def _wait(self, reply: requests.Response, attempt: int) -> float:
        try:
            seconds = float(reply.headers.get("Retry-After", ""))
        except ValueError:
            seconds = 0.2 * 2**attempt
        return max(0.0, min(self.max_wait, seconds))


__all__ = ["ApiError", "ChatVault"]
