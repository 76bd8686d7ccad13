"""The Python client (clients/python) against `make dev`'s stack, as a bot back end uses it: the
browser's side with the session token, the bot's side with SigV4 (the local credentials), and the
claim in both mode. These are also the issue's checks from outside: a token client appending
`assistant` (403), a signed service append (201), a badly signed one (403). The chat (chat,
start_chat) runs against the stack's stand-in model, whose `/stand-in throttle|timeout|error` messages
fail their first reply: the client's retries, with the same message_id, complete the pair once. The
streamed chat (chat_stream, start_chat_stream, stop) runs against the same stand-in, which writes its
reply word by word (40 ms apart; 300 ms on `slow_stack`), and against small local servers: one that
drops the Accept header (the JSON form), one that sends hand-written events."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chatvault_client import (
    ApiError,
    BadGatewayError,
    BearerAuth,
    ChatVault,
    ConflictError,
    ForbiddenError,
    GatewayTimeoutError,
    IamAuth,
    NotFoundError,
    TooLargeError,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from chatvault_client import models as client_models
from chatvault_client.errors import ERROR_STATUS
from chatvault_client.stream import Event, events, lines

from tests.integration.conftest import UNLIMITED
from tests.integration.local_stack import LocalStack, local_stack
from tests.issuer import AUDIENCE, Issuer

LOCAL = Credentials("testing", "testing")
OPENAPI = Path(__file__).resolve().parents[2] / "layers/common/chatvault/openapi.json"


@pytest.fixture(scope="module")
def both_stack(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[LocalStack]:
    overrides = f"AuthMode=both JwtIssuer={issuer.url} JwtAudience={AUDIENCE} {UNLIMITED}"
    with local_stack(tmp_path_factory.mktemp("both"), overrides) as running:
        yield running


def test_a_bot_reads_the_history_and_replies_through_the_service_writer(stack: LocalStack) -> None:
    browser = ChatVault(stack.api)
    created = browser.create_session(title="helpline")
    assert created.session_token
    user = browser.with_token(created.session_token)
    for text in ("one", "two", "three"):
        user.append(created.session_id, "user", text)
    with pytest.raises(ForbiddenError) as refused:
        user.append(created.session_id, "assistant", "forged")
    assert refused.value.code == "role_not_allowed"

    bot = ChatVault(stack.api, IamAuth(region="us-east-1", credentials=LOCAL))
    history = list(bot.messages(created.session_id, page_size=2))  # two pages and a half
    assert [m.content for m in history] == ["one", "two", "three"]
    reply = bot.append(created.session_id, "assistant", "echo: three", metadata={"model": "stand-in"})
    assert reply.role == "assistant"
    again = bot.append(
        created.session_id,
        "assistant",
        "echo: three",
        metadata={"model": "stand-in"},
        message_id=reply.message_id,
    )
    assert again == reply  # idempotent: stored once
    with pytest.raises(ConflictError):
        bot.append(created.session_id, "assistant", "other", message_id=reply.message_id)
    assert bot.get_session(created.session_id).message_count == 4
    assert [m.role for m in user.messages(created.session_id)] == ["user", "user", "user", "assistant"]
    user.delete_session(created.session_id)
    with pytest.raises(NotFoundError):
        bot.get_session(created.session_id)


def _signed(
    stack: LocalStack, path: str, body: dict[str, object], credentials: Credentials
) -> requests.Response:
    url = f"{stack.api}{path}"
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return requests.post(url, data=data, headers=dict(request.headers.items()), timeout=10)


def test_the_local_gateway_checks_the_signature(stack: LocalStack) -> None:
    created = ChatVault(stack.api).create_session()
    path = f"/api/v1/service/sessions/{created.session_id}/messages"
    body = {"role": "assistant", "content": "hi"}
    assert _signed(stack, path, body, LOCAL).status_code == 201
    for bad in (Credentials("testing", "wrong-secret"), Credentials("other-key", "testing")):
        answer = _signed(stack, path, body, bad)
        assert answer.status_code == 403
        assert answer.json() == {"message": "Forbidden"}
    assert requests.post(f"{stack.api}{path}", json=body, timeout=10).status_code == 403  # unsigned
    # a signature over another body does not cover this one
    url = f"{stack.api}{path}"
    request = AWSRequest(method="POST", url=url, data=b'{"role":"assistant","content":"a"}', headers={})
    SigV4Auth(LOCAL, "execute-api", "us-east-1").add_auth(request)
    tampered = requests.post(
        url, data=b'{"role":"system","content":"b"}', headers=dict(request.headers.items()), timeout=10
    )
    assert tampered.status_code == 403
    history = ChatVault(stack.api).with_token(created.session_token or "").messages(created.session_id)
    assert [m.content for m in history] == ["hi"]


def test_claim_through_the_client_in_both_mode(both_stack: LocalStack, issuer: Issuer) -> None:
    anonymous = ChatVault(both_stack.api).create_session(title="onboarding")
    token = anonymous.session_token or ""
    ChatVault(both_stack.api).with_token(token).append(anonymous.session_id, "user", "hello")
    alice = ChatVault(both_stack.api, BearerAuth(issuer.token("alice")))

    claimed = alice.claim(anonymous.session_id, token)

    assert claimed.session_id == anonymous.session_id
    with pytest.raises(NotFoundError):
        ChatVault(both_stack.api).with_token(token).get_session(anonymous.session_id)
    assert [s.session_id for s in alice.sessions()] == [anonymous.session_id]
    assert [m.content for m in alice.messages(anonymous.session_id)] == ["hello"]
    assert alice.claim(anonymous.session_id, token).session_id == anonymous.session_id  # a repeat
    with pytest.raises(ConflictError) as owned:
        ChatVault(both_stack.api, BearerAuth(issuer.token("bob"))).claim(anonymous.session_id, token)
    assert owned.value.code == "session_owned"
    with pytest.raises(UnauthorizedError):
        ChatVault(both_stack.api, BearerAuth(issuer.token("alice", key=issuer.other_key))).get_session(
            anonymous.session_id
        )
    # the bot writes to the signed-in user's session as to any other
    bot = ChatVault(both_stack.api, IamAuth(region="us-east-1", credentials=LOCAL))
    bot.append(anonymous.session_id, "assistant", "welcome back")
    assert [m.role for m in alice.messages(anonymous.session_id)] == ["user", "assistant"]


def test_a_new_session_id_on_every_append_unless_given(stack: LocalStack) -> None:
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    first = user.append(created.session_id, "user", "same")
    second = user.append(created.session_id, "user", "same")
    assert first.message_id != second.message_id
    uuid.UUID(first.message_id)


class Recording(requests.Session):
    """The client's HTTP session, noting each request it sends; `unreachable`: a path prefix whose
    requests fail as a lost connection does."""

    def __init__(self, unreachable: str | None = None) -> None:
        super().__init__()
        self.unreachable = unreachable
        self.sent: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.timeouts: list[object] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = urlsplit(request.url).path
        self.sent.append((request.method or "", path))
        self.bodies.append(json.loads(request.body) if request.body else {})
        self.timeouts.append(kwargs.get("timeout"))
        if self.unreachable and path.startswith(self.unreachable):
            raise requests.ConnectionError("connection reset (the test's)")
        return super().send(request, **kwargs)


def _user(stack: LocalStack, **options: Any) -> tuple[ChatVault, str]:
    """A new anonymous session, and a client holding its token (with `options`)."""
    created = ChatVault(stack.api).create_session()
    return ChatVault(stack.api, **options).with_token(created.session_token or ""), created.session_id


def _history(client: ChatVault, session_id: str) -> list[tuple[str, str, str]]:
    return [(m.role, m.content, m.message_id) for m in client.messages(session_id)]


def test_a_chat_answers_with_the_sessions_history(stack: LocalStack) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http)

    first = user.chat(session_id, "Hello, my name is Ada")
    message_id = str(uuid.uuid4())
    second = user.chat(session_id, "What did I say?", message_id, metadata={"attributes": {"via": "web"}})

    assert (first.message.role, first.message.content) == ("user", "Hello, my name is Ada")
    uuid.UUID(first.message.message_id)  # none given: the client sent one
    assert (first.reply.role, first.reply.content) == ("assistant", 'You said: "Hello, my name is Ada".')
    assert first.reply.metadata.model == "stand-in"
    assert second.message.message_id == message_id
    assert second.message.metadata.attributes == {"via": "web"}
    assert second.reply.content == 'You said: "What did I say?". Earlier you said: "Hello, my name is Ada"'
    # a repeat is the same chat: the same pair, nothing stored
    again = user.chat(session_id, "What did I say?", message_id, metadata={"attributes": {"via": "web"}})
    assert again == second
    assert _history(user, session_id) == [
        ("user", "Hello, my name is Ada", first.message.message_id),
        ("assistant", first.reply.content, first.reply.message_id),
        ("user", "What did I say?", message_id),
        ("assistant", second.reply.content, second.reply.message_id),
    ]
    # a chat reads for as long as the service may answer (30 s); other calls keep the client's timeout
    timeouts = dict(zip((path for _, path in http.sent), http.timeouts, strict=True))
    assert timeouts[f"/api/v1/sessions/{session_id}/chat"] == (10.0, 30.0)
    assert timeouts[f"/api/v1/sessions/{session_id}/messages"] == 10.0


def test_start_chat_creates_a_session_whose_token_works(stack: LocalStack) -> None:
    started = ChatVault(stack.api).start_chat("Hi, I need help")

    session_id = started.session.session_id
    assert started.session.session_token
    assert started.message.session_id == started.reply.session_id == session_id
    assert started.reply.content == 'You said: "Hi, I need help".'
    user = ChatVault(stack.api).with_token(started.session.session_token)
    assert _history(user, session_id) == [
        ("user", "Hi, I need help", started.message.message_id),
        ("assistant", started.reply.content, started.reply.message_id),
    ]
    assert user.chat(session_id, "Thanks").reply.content.endswith('Earlier you said: "Hi, I need help"')


@pytest.mark.parametrize("failure", ["throttle", "timeout", "error"])
def test_a_failed_reply_is_retried_with_the_same_message_id(stack: LocalStack, failure: str) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http, max_wait=0.1)  # the throttle's Retry-After (5 s), capped
    content = f"/stand-in {failure}"

    pair = user.chat(session_id, content)

    assert pair.reply.content == f'You said: "{content}".'
    chat_path = f"/api/v1/sessions/{session_id}/chat"
    assert http.sent == [("POST", chat_path), ("POST", chat_path)]  # the failed attempt, its retry
    assert [body["message_id"] for body in http.bodies] == [pair.message.message_id] * 2
    assert _history(user, session_id) == [  # one user message, one reply
        ("user", content, pair.message.message_id),
        ("assistant", pair.reply.content, pair.reply.message_id),
    ]


# The stand-in's failures, and what the client raises for each (a streamed reply's error event says the
# status the JSON form would answer: 502 for the failed model, not the busy 503)
MODEL_FAILURES = [
    ("throttle", UnavailableError, 503, "model_unavailable"),
    ("timeout", GatewayTimeoutError, 504, "model_timeout"),
    ("error", BadGatewayError, 502, "model_unavailable"),
]


@pytest.mark.parametrize(("failure", "error", "status", "code"), MODEL_FAILURES)
def test_without_retries_a_model_failure_is_raised_and_its_message_id_completes_the_pair(
    stack: LocalStack, failure: str, error: type[ApiError], status: int, code: str
) -> None:
    user, session_id = _user(stack, retries=0)
    message_id = str(uuid.uuid4())
    with pytest.raises(error) as failed:
        user.chat(session_id, f"/stand-in {failure}", message_id)
    assert (failed.value.status, failed.value.code, failed.value.attempts) == (status, code, 1)
    assert failed.value.retry_after == (5.0 if failure == "throttle" else None)
    assert failed.value.message_id == message_id
    pair = user.chat(session_id, f"/stand-in {failure}", message_id)
    assert pair.message.message_id == message_id
    assert [role for role, _, _ in _history(user, session_id)] == ["user", "assistant"]


def test_an_error_a_retry_cannot_mend_is_raised_at_once(stack: LocalStack) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http, retries=3)
    cases: list[tuple[type[ApiError], str, str, str]] = [
        (NotFoundError, "session_not_found", str(uuid.uuid4()), "hello"),
        (TooLargeError, "message_too_large", session_id, "x" * 32769),
        (ConflictError, "message_id_conflict", session_id, "other content"),
    ]
    taken = user.chat(session_id, "hello").message.message_id
    for error, code, target, content in cases:
        http.sent.clear()
        with pytest.raises(error) as refused:
            user.chat(target, content, taken)
        assert (refused.value.code, refused.value.attempts) == (code, 1)
        assert len(http.sent) == 1
    http.sent.clear()
    with pytest.raises(ValidationError):
        user.chat(session_id, "hello", "not-a-uuid")
    assert len(http.sent) == 1
    assert len(_history(user, session_id)) == 2


@pytest.mark.parametrize("failure", ["throttle", "timeout", "error"])
def test_start_chat_whose_first_reply_fails_keeps_its_session(stack: LocalStack, failure: str) -> None:
    http = Recording()
    content = f"/stand-in {failure}"

    started = ChatVault(stack.api, http=http, max_wait=0.1).start_chat(content)

    session_id = started.session.session_id
    assert started.session.session_token
    assert started.reply.content == f'You said: "{content}".'
    # one session: the failure named it, and the retry went to its chat route (with its token)
    assert http.sent == [("POST", "/api/v1/chat"), ("POST", f"/api/v1/sessions/{session_id}/chat")]
    assert [body["message_id"] for body in http.bodies] == [started.message.message_id] * 2
    user = ChatVault(stack.api).with_token(started.session.session_token)
    assert _history(user, session_id) == [
        ("user", content, started.message.message_id),
        ("assistant", started.reply.content, started.reply.message_id),
    ]


def test_start_chat_out_of_retries_raises_with_its_session(stack: LocalStack) -> None:
    message_id = str(uuid.uuid4())
    with pytest.raises(BadGatewayError) as failed:
        ChatVault(stack.api, retries=0).start_chat("/stand-in error", message_id)
    session, stored = failed.value.session, failed.value.user_message
    assert session is not None
    assert session.session_token
    assert stored is not None
    assert stored.message_id == message_id
    user = ChatVault(stack.api).with_token(session.session_token)
    assert user.chat(session.session_id, "/stand-in error", message_id).message == stored

    # the session's route unreachable: the last error (a TransportError) still carries the session
    http = Recording(unreachable="/api/v1/sessions/")
    with pytest.raises(TransportError) as lost:
        ChatVault(stack.api, http=http, retries=2, max_wait=0.01).start_chat("/stand-in timeout", message_id)
    session = lost.value.session
    assert session is not None
    assert session.session_token
    assert lost.value.attempts == 3
    chat_path = f"/api/v1/sessions/{session.session_id}/chat"
    assert http.sent == [("POST", "/api/v1/chat"), ("POST", chat_path), ("POST", chat_path)]
    user = ChatVault(stack.api).with_token(session.session_token)
    pair = user.chat(session.session_id, "/stand-in timeout", message_id)
    assert [m for _, _, m in _history(user, session.session_id)] == [message_id, pair.reply.message_id]


def test_the_chat_is_an_end_users_call(stack: LocalStack) -> None:
    bot = ChatVault(stack.api, IamAuth(region="us-east-1", credentials=LOCAL))
    with pytest.raises(TypeError):
        bot.chat(str(uuid.uuid4()), "hello")
    with pytest.raises(TypeError):
        bot.start_chat("hello")
    with pytest.raises(TypeError):
        bot.chat_stream(str(uuid.uuid4()), "hello")
    with pytest.raises(TypeError):
        bot.start_chat_stream("hello")
    with pytest.raises(TypeError):
        bot.stop(str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("model", "schema"),
    [
        (client_models.Session, "SessionOut"),
        (client_models.CreatedSession, "CreatedSessionOut"),
        (client_models.Message, "MessageOut"),
        (client_models.MessageMetadata, "MessageMetadata"),
        (client_models.Feedback, "FeedbackOut"),
        (client_models.FeedbackRequest, "FeedbackRequest"),
        (client_models.Share, "ShareOut"),
        (client_models.SharePage, "ShareListOut"),
        (client_models.RevokedShare, "RevokedShareOut"),
        (client_models.SharedMessage, "SharedMessageOut"),
        (client_models.SharedConversation, "SharedConversationOut"),
        (client_models.MessagePage, "MessageListOut"),
        (client_models.SessionPage, "SessionListOut"),
        (client_models.DeleteReceipt, "DeleteReceiptOut"),
        (client_models.ErasedCounts, "ErasedCounts"),
        (client_models.Upload, "UploadOut"),
        (client_models.ExportLink, "ExportLinkOut"),
        (client_models.ExportEncryption, "ExportEncryptionOut"),
        (client_models.CreateSessionRequest, "CreateSessionRequest"),
        (client_models.UpdateSessionRequest, "UpdateSessionRequest"),
        (client_models.AppendMessageRequest, "AppendMessageRequest"),
        (client_models.CreateUploadRequest, "CreateUploadRequest"),
        (client_models.ChatRequest, "ChatRequest"),
        (client_models.StartChatRequest, "StartChatRequest"),
        (client_models.ChatPair, "ChatOut"),
        (client_models.StartedChat, "StartedChatOut"),
        (client_models.StopReply, "StopReplyOut"),
        (client_models.ErrorBody, "ErrorBody"),
        (client_models.ErrorDetail, "ErrorDetail"),
    ],
)
def test_the_client_models_are_the_documents_schemas(model: type, schema: str) -> None:
    """Field names, and which are required in answers, as the OpenAPI document has them."""
    document = json.loads(OPENAPI.read_text())["components"]["schemas"][schema]
    assert set(model.model_fields) == set(document["properties"]), schema
    assert model.__doc__.split(":")[0].strip() == schema
    # StartedChatOut's `session` is absent when a session_id is sent; start_chat never sends one
    if schema.endswith("Out") and schema not in ("CreatedSessionOut", "StartedChatOut"):
        required = {name for name, field in model.model_fields.items() if field.is_required()}
        assert required <= set(document.get("required", [])), schema


# -- the streamed chat ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stand-in that writes a word every 300 ms: a reply takes seconds, long enough to see it grow
    and to stop it midway."""
    with local_stack(tmp_path_factory.mktemp("slow"), UNLIMITED, env={"STAND_IN_WORD_MS": "300"}) as running:
        yield running


Answer = Callable[[BaseHTTPRequestHandler, bytes], None]


@contextmanager
def _serving(answer: Answer) -> Iterator[str]:
    """A small HTTP server on a free loopback port answering every POST with `answer`; its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            answer(self, self.rfile.read(int(self.headers.get("content-length") or 0)))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _words(text: str) -> list[str]:
    """The stand-in's deltas for a reply: each word with the space before it."""
    return re.findall(r"\s*\S+", text)


def test_a_streamed_chat_gives_the_text_as_written_then_the_stored_reply(stack: LocalStack) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http)
    user.chat(session_id, "Hello, my name is Ada")
    content = "What did I say before?"

    stream = user.chat_stream(session_id, content, metadata={"attributes": {"via": "web"}})
    deltas = list(stream)

    assert stream.streamed
    expected = f'You said: "{content}". Earlier you said: "Hello, my name is Ada"'
    assert deltas == _words(expected)  # one delta a word, as the stand-in writes them
    assert stream.reply is not None
    assert stream.message is not None
    assert "".join(deltas) == stream.text == stream.reply.content == expected
    assert (stream.message.content, stream.message.message_id) == (content, stream.message_id)
    assert stream.message.metadata.attributes == {"via": "web"}
    assert stream.session is None
    assert stream.result() == client_models.ChatPair(message=stream.message, reply=stream.reply)
    assert http.sent[-1] == ("POST", f"/api/v1/sessions/{session_id}/chat")  # one request
    assert http.timeouts[-1] == (10.0, 30.0)  # as a chat reads
    # exactly what the history has: the reply as GET .../messages returns it
    assert list(user.messages(session_id))[-2:] == [stream.message, stream.reply]

    # a repeat (the same message_id) is the same chat: no deltas, the stored pair, nothing stored
    again = user.chat_stream(session_id, content, stream.message_id, metadata={"attributes": {"via": "web"}})
    assert list(again) == []
    assert again.streamed
    assert (again.message, again.reply) == (stream.message, stream.reply)
    assert len(_history(user, session_id)) == 4


def test_the_deltas_arrive_one_by_one_as_they_are_written(slow_stack: LocalStack) -> None:
    user, session_id = _user(slow_stack)
    stream = user.chat_stream(session_id, "Hello there, Ada")
    arrivals: list[tuple[float, str]] = [(time.monotonic(), text) for text in stream]
    done = time.monotonic()

    assert [text for _, text in arrivals] == _words('You said: "Hello there, Ada".')  # 5 words: 1.2 s
    times = [at for at, _ in arrivals]
    assert times[-1] - times[0] > 0.8  # the first well before the last
    assert done - times[0] > 0.8  # and well before the stream's end
    assert stream.reply is not None
    assert stream.reply.content == stream.text


@pytest.mark.parametrize(("failure", "error", "status", "code"), MODEL_FAILURES)
def test_a_failed_streamed_reply_raises_with_its_message_id_and_a_repeat_completes_it(
    stack: LocalStack, failure: str, error: type[ApiError], status: int, code: str
) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http)
    content = f"/stand-in {failure}"
    message_id = str(uuid.uuid4())

    stream = user.chat_stream(session_id, content, message_id)
    with pytest.raises(error) as failed:
        next(stream)

    assert (failed.value.status, failed.value.code, failed.value.attempts) == (status, code, 1)
    assert failed.value.retry_after == (5.0 if failure == "throttle" else None)  # as the JSON form says
    assert failed.value.message_id == message_id
    stored = failed.value.user_message
    assert stored is not None
    assert (stored.message_id, stored.content) == (message_id, content)
    assert stream.message == stored
    assert stream.reply is None
    assert len(http.sent) == 1  # the stream itself does not retry
    with pytest.raises(error):
        stream.result()  # what the iteration raised

    again = user.chat_stream(session_id, content, message_id)
    deltas = list(again)
    assert again.reply is not None
    assert "".join(deltas) == again.reply.content == f'You said: "{content}".'
    assert again.message == stored
    assert _history(user, session_id) == [  # one user message, exactly one reply
        ("user", content, message_id),
        ("assistant", again.reply.content, again.reply.message_id),
    ]


def test_a_failure_before_anything_is_stored_is_raised_by_the_call(stack: LocalStack) -> None:
    http = Recording()
    user, session_id = _user(stack, http=http)
    taken = user.chat(session_id, "hello").message.message_id
    http.sent.clear()
    with pytest.raises(NotFoundError) as missing:
        user.chat_stream(str(uuid.uuid4()), "hello", taken)
    assert (missing.value.code, missing.value.message_id) == ("session_not_found", taken)
    with pytest.raises(ConflictError) as conflict:
        user.chat_stream(session_id, "other content", taken)
    assert (conflict.value.code, conflict.value.message_id) == ("message_id_conflict", taken)
    assert len(http.sent) == 2  # neither is retried
    assert len(_history(user, session_id)) == 2


def test_start_chat_stream_creates_a_session_whose_token_works(stack: LocalStack) -> None:
    stream = ChatVault(stack.api).start_chat_stream("Hi, I need help")
    deltas = list(stream)

    session = stream.session
    assert session is not None
    assert session.session_token
    started = stream.result()
    assert isinstance(started, client_models.StartedChat)
    assert started.session == session
    assert started.reply.content == "".join(deltas) == 'You said: "Hi, I need help".'
    assert started.message.session_id == started.reply.session_id == session.session_id
    user = ChatVault(stack.api).with_token(session.session_token)
    assert list(user.messages(session.session_id)) == [started.message, started.reply]
    follow = user.chat_stream(session.session_id, "Thanks")
    assert "".join(follow).endswith('Earlier you said: "Hi, I need help"')


def test_start_chat_stream_whose_reply_fails_raises_with_its_session(stack: LocalStack) -> None:
    content = "/stand-in error"
    stream = ChatVault(stack.api).start_chat_stream(content)
    with pytest.raises(BadGatewayError) as failed:
        stream.result()
    session, message_id = failed.value.session, failed.value.message_id
    assert session is not None
    assert session.session_token
    assert message_id == stream.message_id
    assert failed.value.user_message == stream.message
    # as its docstring says: the session's chat, with its token and the same message_id
    user = ChatVault(stack.api).with_token(session.session_token)
    pair = user.chat_stream(session.session_id, content, message_id).result()
    assert pair.message == failed.value.user_message
    assert _history(user, session.session_id) == [
        ("user", content, message_id),
        ("assistant", pair.reply.content, pair.reply.message_id),
    ]


def test_where_the_answer_is_json_the_stream_is_the_pair_without_deltas(stack: LocalStack) -> None:
    """A proxy (or a deployment) that ignores Accept: the service answers the JSON form."""
    seen: list[tuple[str, str | None]] = []

    def forward(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        seen.append((handler.path, handler.headers.get("accept")))
        dropped = ("accept", "host", "content-length", "connection")
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in dropped}
        answer = requests.post(f"{stack.api}{handler.path}", data=body, headers=headers, timeout=30)
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)

    with _serving(forward) as proxy:
        created = ChatVault(stack.api).create_session()
        user = ChatVault(stack.api, stream_url=f"{proxy}/api/v1").with_token(created.session_token or "")
        stream = user.chat_stream(created.session_id, "Hello")
        assert list(stream) == []
        assert not stream.streamed
        pair = stream.result()
        assert pair.reply.content == 'You said: "Hello".'
        assert list(user.messages(created.session_id)) == [pair.message, pair.reply]

        started = ChatVault(stack.api, stream_url=proxy).start_chat_stream("Hi")
        assert list(started) == []
        result = started.result()
        assert started.session == result.session
        assert result.session.session_token
        assert result.reply.content == 'You said: "Hi".'

    # only the streamed chats went to stream_url (the other calls to base_url), asking for events
    assert seen == [
        (f"/api/v1/sessions/{created.session_id}/chat", "text/event-stream"),
        ("/api/v1/chat", "text/event-stream"),
    ]


def _sse(*chunks: bytes) -> Answer:
    """An answer sending these chunks of an event stream, each its own HTTP chunk."""

    def answer(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for chunk in chunks:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.close_connection = True

    return answer


def _message(role: str, content: str) -> bytes:
    return json.dumps(
        {
            "message_id": str(uuid.uuid4()),
            "session_id": "s-1",
            "role": role,
            "content": content,
            "metadata": {},
            "created_at": "2025-01-01T00:00:00Z",
        }
    ).encode()


def test_the_event_stream_is_read_as_the_format_says() -> None:
    """Comments, events without data, CRLF, CR and LF line ends (a CRLF and a UTF-8 character split
    between chunks), data over several lines, an unknown event: the deltas, then the reply."""
    reply = _message("assistant", "Grüße, world")
    cut = reply.index(b', "session_id"') + 1  # between two members: the joining newline is JSON space
    script = _sse(
        b": a comment\r\nretry: 1000\r\n\r\n",
        b"event: message\r\ndata: " + _message("user", "hi") + b"\r\n\r\n",
        b'event: delta\r\ndata: {"text":\r',
        b'\ndata: "Gr\xc3',
        b'\xbc\xc3\x9fe, "}\r\n\r\n',
        b"event: typing\ndata: {}\n\n",
        b'event: delta\rdata:{"text": "world"}\r\r',
        b"event: reply\ndata: " + reply[:cut] + b"\ndata: " + reply[cut:] + b"\n\n",
    )
    with _serving(script) as url:
        stream = ChatVault(url).with_token("t").chat_stream("s-1", "hi")
        assert list(stream) == ["Grüße, ", "world"]
    assert stream.message is not None
    assert stream.message.content == "hi"
    assert stream.reply is not None
    assert stream.reply.content == "Grüße, world"

    assert list(lines([b"a\r", b"\nb\rc\n", b"\r\n", b"d"])) == ["a", "b", "c", ""]
    assert list(events(["data: x", "data:  y", "", "event: e", "", "event: f", "data"])) == [
        Event("message", "x\n y")
    ]


def test_a_stream_cut_off_raises_with_its_message_id() -> None:
    script = _sse(
        b"event: message\ndata: " + _message("user", "hi") + b"\n\n", b'event: delta\ndata: {"text": "Hel'
    )
    with _serving(script) as url:
        stream = ChatVault(url).with_token("t").chat_stream("s-1", "hi")
        with pytest.raises(TransportError) as lost:
            stream.result()
    assert lost.value.message_id == stream.message_id
    assert lost.value.user_message == stream.message
    assert lost.value.user_message is not None


def test_the_error_codes_statuses_are_the_services() -> None:
    from chatvault.http.errors import ERROR_MAP

    served = {code: status for status, code in ERROR_MAP.values() if code != "model_unavailable"}
    assert {code: ERROR_STATUS[code] for code in served} == served
    assert ERROR_STATUS["model_unavailable"] in {s for s, c in ERROR_MAP.values() if c == "model_unavailable"}
    assert ERROR_STATUS["internal_error"] == 500


def test_a_reply_left_midway_is_still_stored(stack: LocalStack) -> None:
    user, session_id = _user(stack)
    with user.chat_stream(session_id, "one two three four five six") as stream:
        next(stream)
    assert stream.reply is None
    with pytest.raises(TransportError) as closed:
        stream.result()
    assert closed.value.message_id == stream.message_id
    deadline = time.monotonic() + 10
    while len(history := _history(user, session_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert history[1][:2] == ("assistant", 'You said: "one two three four five six".')


def test_stop_ends_a_streamed_reply_with_the_text_so_far(slow_stack: LocalStack) -> None:
    user, session_id = _user(slow_stack)
    assert user.stop(session_id) is False  # no reply being made
    content = "tell me a long story about a lighthouse keeper and the sea at night"
    whole = f'You said: "{content}".'

    stream = user.chat_stream(session_id, content)
    first = next(stream)
    assert user.stop(session_id) is True
    rest = list(stream)

    reply = stream.reply
    assert reply is not None
    assert reply.metadata.attributes is not None
    assert reply.metadata.attributes["stop_reason"] == "stopped"
    assert reply.content == first + "".join(rest) == stream.text
    assert whole.startswith(reply.content)
    assert len(reply.content) < len(whole)
    assert list(user.messages(session_id)) == [stream.message, reply]
    assert user.stop(session_id) is False  # nothing being made any more


def test_a_conversation_kept_less_long_forgets_what_it_passed(stack: LocalStack) -> None:
    """Retention per conversation through the client and the local stack: the first exchange is made
    5 hours old in the emulator's table (as if written then), and a PATCH to 3 hours deletes it, from
    the history, the model's context and the table alike."""
    created = ChatVault(stack.api).create_session(retention_hours=48)
    assert created.retention_hours == 48
    user = ChatVault(stack.api).with_token(created.session_token or "")
    sid = created.session_id
    user.chat(sid, "Hello, my name is Ada")
    table = stack.client("dynamodb")
    name = "chatvault-local-SessionsTable"
    old = [
        item
        for item in table.query(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": sid}}
        )["Items"]
        if item["sk"]["S"].startswith("M#")
    ]
    assert len(old) == 2
    five_hours_ago = time.time() - 5 * 3600
    for item in old:  # written 5 hours ago, kept 48 hours from then
        table.update_item(
            TableName=name,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET created_at = :c, expires_at = :e",
            ExpressionAttributeValues={
                ":c": {"S": time.strftime("%Y-%m-%dT%H:%M:%S.000000+0000", time.gmtime(five_hours_ago))},
                ":e": {"N": str(int(five_hours_ago + 48 * 3600))},
            },
        )
    later = user.chat(sid, "I like tea")
    assert later.reply.content == 'You said: "I like tea". Earlier you said: "Hello, my name is Ada"'

    updated = user.update_session(sid, retention_hours=3)
    assert updated.retention_hours == 3
    assert [m.content for m in user.messages(sid)] == ["I like tea", later.reply.content]
    asked = user.chat(sid, "What did I say?")
    assert asked.reply.content == 'You said: "What did I say?". Earlier you said: "I like tea"'
    left = {item["sk"]["S"] for item in table.scan(TableName=name)["Items"] if item["pk"]["S"] == sid}
    assert not left & {item["sk"]["S"] for item in old}  # deleted, not only hidden
    with pytest.raises(ValidationError):
        user.update_session(sid, retention_hours=49 * 1000)


def test_feedback_on_a_reply_through_the_client(stack: LocalStack) -> None:
    user, session_id = _user(stack)
    pair = user.chat(session_id, "Hello")
    rated = user.set_feedback(session_id, pair.reply.message_id, "down", "Too short")
    assert rated.feedback is not None
    assert (rated.feedback.rating, rated.feedback.comment) == ("down", "Too short")
    assert [m.feedback for m in user.messages(session_id)][1] == rated.feedback
    with pytest.raises(ValidationError):  # a user's message is not rated
        user.set_feedback(session_id, pair.message.message_id, "up")
    with pytest.raises(NotFoundError) as missing:
        user.set_feedback(session_id, str(uuid.uuid4()), "up")
    assert missing.value.code == "message_not_found"
    assert user.clear_feedback(session_id, pair.reply.message_id).feedback is None


def test_a_share_link_through_the_client_and_the_local_stack(stack: LocalStack) -> None:
    """Made, read by anyone without credentials (exactly the messages up to it), listed, revoked."""
    user, session_id = _user(stack)
    user.append(session_id, "user", "Before the link")
    share = user.create_share(session_id)
    assert share.message_count == 1
    user.append(session_id, "user", "After the link")
    anyone = ChatVault(stack.api)
    shared = anyone.shared(share.share_id)
    assert [(m.role, m.content) for m in shared.items] == [("user", "Before the link")]
    raw = requests.get(f"{stack.api}/api/v1/shared/{share.share_id}", timeout=10)
    assert raw.headers["Cache-Control"] == "no-store"
    assert raw.headers["Referrer-Policy"] == "no-referrer"
    assert session_id not in raw.text
    assert [s.share_id for s in user.shares(session_id)] == [share.share_id]
    assert user.revoke_share(session_id, share.share_id).share_id == share.share_id
    with pytest.raises(NotFoundError) as revoked:
        anyone.shared(share.share_id)
    assert revoked.value.code == "share_not_found"
    second = user.create_share(session_id)
    user.delete_session(session_id)  # the panic button revokes every link
    with pytest.raises(NotFoundError):
        anyone.shared(second.share_id)


def test_allow_sharing_false_on_the_local_stack(tmp_path_factory: pytest.TempPathFactory) -> None:
    with local_stack(tmp_path_factory.mktemp("no-sharing"), f"AllowSharing=false {UNLIMITED}") as running:
        _, session_id = _user(running)
        for method, path in (
            ("POST", f"/api/v1/sessions/{session_id}/shares"),
            ("GET", f"/api/v1/sessions/{session_id}/shares"),
            ("DELETE", f"/api/v1/sessions/{session_id}/shares/{'A' * 22}"),
            ("GET", f"/api/v1/shared/{'A' * 22}"),
        ):
            reply = requests.request(method, running.api + path, timeout=10)
            assert (reply.status_code, reply.json()["error"]["code"]) == (404, "not_found"), (method, path)
