"""The Bedrock Converse adapter (chatvault/llm/bedrock.py), against botocore's Stubber on the real cached
client (moto has no Converse): the request's exact shape, the reply's mapping, and what every failure
becomes, each logged with its code and never with the conversation."""

from __future__ import annotations

import binascii
import json
import logging
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from chatvault.core.errors import ChatVaultError, ModelBusyError, ModelFailedError, ModelTimeoutError
from chatvault.llm import Guardrail, ModelReply, ModelRequest, Turn, bedrock

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
SECRET = "my landlord's name is Sandoval"  # conversation text that must never reach a log
SYSTEM = "You are a careful assistant."
BUSY = "The model is busy; retry shortly with the same message_id."
UNAVAILABLE = "The model is unavailable right now; retry shortly with the same message_id."


@pytest.fixture(autouse=True)
def fresh_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test builds its own bedrock-runtime client, in a region, with (fake) credentials."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bedrock.client.cache_clear()
    yield
    bedrock.client.cache_clear()


def _request(turns: int = 1, system: str = "", max_tokens: int = 512) -> ModelRequest:
    history = tuple(
        Turn("user", (f"{SECRET} #{i}",)) if i % 2 == 0 else Turn("assistant", (f"answer #{i}",))
        for i in range(turns)
    )
    return ModelRequest(system=system, turns=history, max_tokens=max_tokens)


def _response(
    blocks: list[dict[str, Any]], stop_reason: str = "end_turn", tokens: tuple[int, int] = (120, 34)
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": blocks}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
        "metrics": {"latencyMs": 812},
    }


def _answered(response: dict[str, Any], request: ModelRequest | None = None) -> ModelReply:
    with Stubber(bedrock.client()) as stub:
        stub.add_response("converse", response)
        reply = bedrock.converse(request or _request(), MODEL)
        stub.assert_no_pending_responses()
    return reply


class Logs:
    """What the adapter logged at every level: the records, and what Powertools printed."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        self.caplog, self.capfd = caplog, capfd

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        return out + err + "\n".join(r.getMessage() + str(r.__dict__) for r in self.caplog.records)

    def failures(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if r.getMessage() == "model call failed"]

    def assert_failed_once_without_content(self, code: str, cause: str | None = None) -> None:
        (record,) = self.failures()  # logged once
        assert record.levelno == logging.WARNING
        assert (record.error_code, record.model) == (code, MODEL)  # type: ignore[attr-defined]
        if cause is not None:
            assert record.cause == cause  # type: ignore[attr-defined]
        logged = self.text()
        for text in (SECRET, SYSTEM, "answer #1", REPLY_SECRET):
            assert text not in logged


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Logs:
    return Logs(caplog, capfd)


def _assert_mapped(error: ChatVaultError, error_type: type[ChatVaultError], message: str | None) -> None:
    """The model error the caller gets: its type and message, raised `from None` (the botocore error
    stays out of the traceback), and a busy model's Retry-After."""
    assert type(error) is error_type
    if message is not None:
        assert error.message == message
    assert error.__cause__ is None
    assert error.__suppress_context__
    if error_type is ModelBusyError:
        assert error.retry_after == 5  # type: ignore[attr-defined]


def test_the_client_makes_one_attempt_within_the_functions_time() -> None:
    """No SDK retries (the caller retries with the same message_id), and connect plus read fit in the
    function's 28 s with room for the storage calls around the model call."""
    config = bedrock.client().meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 22.0)
    assert bedrock.client() is bedrock.client()  # cached: one client per process


def test_a_long_history_is_sent_turn_by_turn_with_system_prompt_limit_and_guardrail() -> None:
    """Every turn goes in order with its role, a turn of several messages as several text blocks of
    one message, the system prompt as one block, maxTokens from the request, and the guardrail with
    its trace off; nothing else is sent."""
    turns = (
        Turn("user", ("u0",)),
        Turn("assistant", ("a1",)),
        Turn("user", ("u2 (reply failed)", "u2 again")),
        Turn("assistant", ("a3",)),
        Turn("user", ("u4",)),
        Turn("assistant", ("a5", "a5 more")),
        Turn("user", ("u6",)),
        Turn("assistant", ("a7",)),
        Turn("user", (SECRET,)),
    )
    request = ModelRequest(system=SYSTEM, turns=turns, max_tokens=700)
    expected = {
        "modelId": MODEL,
        "messages": [
            {"role": "user", "content": [{"text": "u0"}]},
            {"role": "assistant", "content": [{"text": "a1"}]},
            {"role": "user", "content": [{"text": "u2 (reply failed)"}, {"text": "u2 again"}]},
            {"role": "assistant", "content": [{"text": "a3"}]},
            {"role": "user", "content": [{"text": "u4"}]},
            {"role": "assistant", "content": [{"text": "a5"}, {"text": "a5 more"}]},
            {"role": "user", "content": [{"text": "u6"}]},
            {"role": "assistant", "content": [{"text": "a7"}]},
            {"role": "user", "content": [{"text": SECRET}]},
        ],
        "system": [{"text": SYSTEM}],
        "inferenceConfig": {"maxTokens": 700},
        "guardrailConfig": {"guardrailIdentifier": "gr-abc123", "guardrailVersion": "3", "trace": "disabled"},
    }
    with Stubber(bedrock.client()) as stub:
        stub.add_response("converse", _response([{"text": "ok"}]), expected_params=expected)
        bedrock.converse(request, MODEL, Guardrail(identifier="gr-abc123", version="3"))
        stub.assert_no_pending_responses()


def test_an_empty_system_prompt_and_no_guardrail_are_left_out() -> None:
    """Converse refuses a blank system block: with no system prompt and no guardrail, the request
    carries neither key."""
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": f"{SECRET} #0"}]}],
        "inferenceConfig": {"maxTokens": 512},
    }
    with Stubber(bedrock.client()) as stub:
        stub.add_response("converse", _response([{"text": "ok"}]), expected_params=expected)
        bedrock.converse(_request(), MODEL)
        stub.assert_no_pending_responses()


def test_the_reply_joins_its_text_blocks_and_carries_usage_and_model() -> None:
    """All text blocks, in order and with nothing between them, make the reply; other blocks (a
    reasoning model's thinking) are left out."""
    reply = _answered(
        _response(
            [
                {"reasoningContent": {"reasoningText": {"text": "thinking...", "signature": "sig"}}},
                {"text": "Your lease "},
                {"text": "ends in May."},
            ],
            tokens=(1234, 56),
        )
    )
    assert reply == ModelReply(
        text="Your lease ends in May.",
        model=MODEL,
        input_tokens=1234,
        output_tokens=56,
        stop_reason="end_turn",
        guardrail_intervened=False,
    )


def test_a_reply_cut_by_max_tokens_keeps_its_stop_reason() -> None:
    reply = _answered(_response([{"text": "Your lease ends"}], stop_reason="max_tokens"))
    assert (reply.text, reply.stop_reason, reply.guardrail_intervened) == (
        "Your lease ends",
        "max_tokens",
        False,
    )


def test_a_guardrail_intervention_answers_with_the_guardrails_message() -> None:
    """When the guardrail blocks the input or the output, Bedrock answers with the guardrail's
    configured message: that is the reply, marked as an intervention."""
    blocked = "Sorry, I can't help with that request."
    reply = _answered(_response([{"text": blocked}], stop_reason="guardrail_intervened", tokens=(0, 0)))
    assert reply.text == blocked
    assert reply.guardrail_intervened
    assert reply.stop_reason == "guardrail_intervened"


@pytest.mark.parametrize(
    "blocks",
    [
        [],
        [{"text": ""}],
        [{"reasoningContent": {"reasoningText": {"text": "thinking...", "signature": "sig"}}}],
    ],
    ids=["no-blocks", "blank-text", "reasoning-only"],
)
def test_a_reply_without_text_fails(blocks: list[dict[str, Any]]) -> None:
    with pytest.raises(ModelFailedError, match=r"^The model returned an empty reply\.$"):
        _answered(_response(blocks, stop_reason="max_tokens"))


FAILED_DEFAULT = ModelFailedError.default_message

CLIENT_ERRORS = [
    ("ThrottlingException", 429, ModelBusyError, BUSY),
    ("ServiceQuotaExceededException", 400, ModelBusyError, BUSY),
    ("ServiceUnavailableException", 503, ModelBusyError, UNAVAILABLE),
    ("InternalServerException", 500, ModelBusyError, UNAVAILABLE),
    ("ModelNotReadyException", 429, ModelBusyError, UNAVAILABLE),
    ("ModelTimeoutException", 408, ModelTimeoutError, ModelTimeoutError.default_message),
    (
        "AccessDeniedException",
        403,
        ModelFailedError,
        "The chat function may not invoke the model: check ModelId, the model's access in the Bedrock "
        "console, and the function's role.",
    ),
    (
        "ResourceNotFoundException",
        404,
        ModelFailedError,
        "The model ModelId names does not exist in this region: check ModelId.",
    ),
    (
        "ValidationException",
        400,
        ModelFailedError,
        "Bedrock refused the request (a ModelId, guardrail or MaxReplyTokens the model does not accept): "
        "check the chat function's logs.",
    ),
    (
        "ModelErrorException",
        424,
        ModelFailedError,
        "The model failed while answering; retry with the same message_id.",
    ),
    ("SomeFutureException", 400, ModelFailedError, FAILED_DEFAULT),
]


@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
@pytest.mark.parametrize(
    ("code", "status", "error_type", "message"), CLIENT_ERRORS, ids=[c[0] for c in CLIENT_ERRORS]
)
def test_every_bedrock_error_becomes_its_model_error_and_is_logged_without_the_conversation(
    operation: str,
    code: str,
    status: int,
    error_type: type[ChatVaultError],
    message: str,
    logs: Logs,
) -> None:
    """Converse, and ConverseStream refused before any event: the same mapping, logged once."""
    cause = f"Bedrock says {code} happened"
    items: list[str | ModelReply] = []
    request = _request(turns=3, system=SYSTEM)

    def ask() -> None:
        if operation == "converse":
            bedrock.converse(request, MODEL)
        else:
            _drain(bedrock.converse_stream(request, MODEL), items)

    with Stubber(bedrock.client()) as stub:
        stub.add_client_error(operation, code, cause, http_status_code=status)
        with pytest.raises(error_type) as raised:
            ask()
        stub.assert_no_pending_responses()

    assert items == []
    _assert_mapped(raised.value, error_type, message)
    logs.assert_failed_once_without_content(code, cause)


NETWORK_ERRORS = [
    (ConnectTimeoutError, ModelBusyError, UNAVAILABLE),
    (EndpointConnectionError, ModelBusyError, UNAVAILABLE),
    (ReadTimeoutError, ModelTimeoutError, ModelTimeoutError.default_message),
    (ConnectionClosedError, ModelBusyError, UNAVAILABLE),  # dropped mid-call: retry
]


@pytest.mark.parametrize(
    ("exc_type", "error_type", "message"), NETWORK_ERRORS, ids=[n[0].__name__ for n in NETWORK_ERRORS]
)
def test_a_network_failure_is_tried_once_and_becomes_its_model_error(
    exc_type: type[Exception],
    error_type: type[ChatVaultError],
    message: str,
    logs: Logs,
) -> None:
    """botocore would retry timeouts and refused connections; this client sends once and fails."""
    client = bedrock.client()
    attempts: list[str] = []

    def fail(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        raise exc_type(endpoint_url=request.url)

    client.meta.events.register("before-send.bedrock-runtime.Converse", fail)
    with pytest.raises(error_type) as raised:
        bedrock.converse(_request(turns=3, system=SYSTEM), MODEL)

    assert len(attempts) == 1
    assert attempts[0].startswith("https://bedrock-runtime.us-east-1.amazonaws.com/model/")
    _assert_mapped(raised.value, error_type, message)
    logs.assert_failed_once_without_content(exc_type.__name__)


def test_a_throttle_from_the_wire_is_not_retried_inside_the_call() -> None:
    """A real 429 response, parsed by botocore: one attempt, then 503 with Retry-After for the caller
    (botocore's default would sleep and retry, spending the user's time)."""
    attempts: list[str] = []

    class _Body:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b'{"message":"Too many requests, please wait before trying again."}'

    def throttle(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        headers = {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/"}
        return AWSResponse(request.url, 429, headers, _Body())

    bedrock.client().meta.events.register("before-send.bedrock-runtime.Converse", throttle)
    with pytest.raises(ModelBusyError) as raised:
        bedrock.converse(_request(), MODEL)
    assert len(attempts) == 1
    assert raised.value.retry_after == 5


def test_error_of_maps_a_stand_ins_error_without_a_model_id(caplog: pytest.LogCaptureFixture) -> None:
    """The stand-in model fails through error_of too; with no model id known, none is logged."""
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "Converse")
    error = bedrock.error_of(exc)
    assert isinstance(error, ModelBusyError)
    assert (error.retry_after, error.message) == (5, BUSY)
    (record,) = [r for r in caplog.records if r.getMessage() == "model call failed"]
    assert (record.error_code, record.cause) == ("ThrottlingException", "Rate exceeded")  # type: ignore[attr-defined]
    assert not hasattr(record, "model")


def test_a_local_botocore_error_is_logged_without_its_text(logs: Logs) -> None:
    """botocore's own errors (parameter validation, for one) may quote a parameter's value: only
    their class is logged."""
    from botocore.exceptions import ParamValidationError

    exc = ParamValidationError(
        report=f"Invalid type for parameter messages[0].content[0].text, value: {SECRET}"
    )
    error = bedrock.error_of(exc, model_id=MODEL)
    assert type(error) is ModelFailedError
    assert error.message == FAILED_DEFAULT
    logs.assert_failed_once_without_content("ParamValidationError")


def test_a_long_mixed_stored_history_reaches_converse_as_it_accepts_it() -> None:
    """From stored messages (every role, a failed reply's user message, a bot's two replies) through
    the context rule (llm/context.py) to the request Bedrock receives: alternating roles, starting with
    a user's, no system or tool message, the newest ChatContextMessages only."""
    from datetime import UTC, datetime

    from chatvault.llm.context import turns_of
    from chatvault.models.domain import MessageRecord

    at = datetime(2026, 12, 5, tzinfo=UTC)
    roles = ["assistant", "user", "system", "user", "assistant", "tool", "assistant", "user", "assistant"]
    stored = [
        MessageRecord(
            session_id="s",
            position=f"{n:020d}",
            message_id=f"m{n}",
            role=role,  # type: ignore[arg-type]
            content=f"{role} {n}",
            metadata={},
            created_at=at,
            expires_at=at,
        )
        for n, role in enumerate(roles * 3)
    ]
    request = ModelRequest(system=SYSTEM, turns=turns_of(stored, "newest", limit=12), max_tokens=256)
    expected_messages = [
        {"role": "user", "content": [{"text": "user 16"}]},
        {"role": "assistant", "content": [{"text": "assistant 17"}, {"text": "assistant 18"}]},
        {"role": "user", "content": [{"text": "user 19"}, {"text": "user 21"}]},
        {"role": "assistant", "content": [{"text": "assistant 22"}, {"text": "assistant 24"}]},
        {"role": "user", "content": [{"text": "user 25"}]},
        {"role": "assistant", "content": [{"text": "assistant 26"}]},
        {"role": "user", "content": [{"text": "newest"}]},
    ]
    with Stubber(bedrock.client()) as stub:
        stub.add_response(
            "converse",
            _response([{"text": "ok"}]),
            {
                "modelId": MODEL,
                "messages": expected_messages,
                "system": [{"text": SYSTEM}],
                "inferenceConfig": {"maxTokens": 256},
            },
        )
        assert bedrock.converse(request, MODEL).text == "ok"
        stub.assert_no_pending_responses()


# --- ConverseStream (bedrock.converse_stream) -----------------------------------------------------------
# Two ways in. Most tests hand the adapter parsed events through the real client (Stubber checks the
# request; an after-call hook puts a closeable iterable of events where botocore's EventStream goes).
# The wire tests send real event-stream frames through botocore's parser (a before-send hook answering
# with an AWSResponse, or a loopback server), which is where in-stream exceptions and mid-stream network
# failures really come from.

REPLY_SECRET = "Sandoval's lease ends in May"  # model output that must never reach a log either


class _Events:
    """What botocore hands over as response["stream"]: events to iterate, and close()."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._events = events
        self.read = 0
        self.closed = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self._events:
            self.read += 1
            yield event

    def close(self) -> None:
        self.closed += 1


@contextmanager
def _stubbed(events: list[dict[str, Any]], expected: dict[str, Any] | None = None) -> Iterator[_Events]:
    stream = _Events(events)
    client = bedrock.client()

    def hand_over(parsed: dict[str, Any], **_: Any) -> None:
        parsed["stream"] = stream

    client.meta.events.register("after-call.bedrock-runtime.ConverseStream", hand_over)
    with Stubber(client) as stub:
        stub.add_response("converse_stream", {}, expected_params=expected)
        yield stream
        stub.assert_no_pending_responses()


def _stream_events(
    deltas: list[str], stop_reason: str = "end_turn", tokens: tuple[int, int] = (120, 34)
) -> list[dict[str, Any]]:
    """A reply as ConverseStream sends it: one text block of the deltas, its stop, then its usage."""
    return [
        {"messageStart": {"role": "assistant"}},
        *({"contentBlockDelta": {"delta": {"text": d}, "contentBlockIndex": 0}} for d in deltas),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": stop_reason}},
        {
            "metadata": {
                "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
                "metrics": {"latencyMs": 640},
            }
        },
    ]


def _streamed(
    events: list[dict[str, Any]], request: ModelRequest | None = None, guardrail: Guardrail | None = None
) -> tuple[list[str | ModelReply], _Events]:
    with _stubbed(events) as stream:
        items = list(bedrock.converse_stream(request or _request(), MODEL, guardrail))
    return items, stream


def _drain(stream: Iterator[str | ModelReply], into: list[str | ModelReply]) -> None:
    for item in stream:
        into.append(item)


# event-stream framing (the vnd.amazon.eventstream wire format botocore decodes)


def _frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _wire_event(event: dict[str, Any]) -> bytes:
    ((name, body),) = event.items()
    headers = {":event-type": name, ":content-type": "application/json", ":message-type": "event"}
    return _frame(headers, json.dumps(body).encode())


def _wire_exception(name: str, message: str) -> bytes:
    headers = {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"}
    return _frame(headers, json.dumps({"message": message}).encode())


class _Raw:
    """The raw HTTP response botocore's EventStream reads: chunks of bytes, or an error to raise."""

    def __init__(self, chunks: list[bytes | Exception]) -> None:
        self.chunks = chunks
        self.closed = 0

    def stream(self, **_: Any) -> Iterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed += 1


def _on_the_wire(chunks: list[bytes | Exception], sent: list[Any] | None = None) -> _Raw:
    raw = _Raw(chunks)

    def answer(request: Any, **_: Any) -> AWSResponse:
        if sent is not None:
            sent.append(request)
        return AWSResponse(request.url, 200, {"content-type": "application/vnd.amazon.eventstream"}, raw)

    bedrock.client().meta.events.register("before-send.bedrock-runtime.ConverseStream", answer)
    return raw


def test_a_stream_sends_the_converse_request_with_the_guardrail_in_sync_mode() -> None:
    """The same messages, system block and maxTokens as Converse; the guardrail with its trace off and
    every chunk checked before it is sent (sync); nothing else."""
    turns = (
        Turn("user", ("u0",)),
        Turn("assistant", ("a1", "a1 more")),
        Turn("user", ("u2 (reply failed)", SECRET)),
    )
    expected = {
        "modelId": MODEL,
        "messages": [
            {"role": "user", "content": [{"text": "u0"}]},
            {"role": "assistant", "content": [{"text": "a1"}, {"text": "a1 more"}]},
            {"role": "user", "content": [{"text": "u2 (reply failed)"}, {"text": SECRET}]},
        ],
        "system": [{"text": SYSTEM}],
        "inferenceConfig": {"maxTokens": 700},
        "guardrailConfig": {
            "guardrailIdentifier": "gr-abc123",
            "guardrailVersion": "3",
            "trace": "disabled",
            "streamProcessingMode": "sync",
        },
    }
    request = ModelRequest(system=SYSTEM, turns=turns, max_tokens=700)
    with _stubbed(_stream_events(["ok"]), expected) as stream:
        items = list(bedrock.converse_stream(request, MODEL, Guardrail(identifier="gr-abc123", version="3")))
    assert items[0] == "ok"
    assert stream.closed == 1


def test_a_stream_leaves_out_an_empty_system_prompt_and_no_guardrail() -> None:
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": f"{SECRET} #0"}]}],
        "inferenceConfig": {"maxTokens": 512},
    }
    with _stubbed(_stream_events(["ok"]), expected):
        list(bedrock.converse_stream(_request(), MODEL))


def test_a_stream_is_not_requested_before_it_is_read() -> None:
    """converse_stream is a generator: the model is asked on the first next(), and a stream closed
    before then never asks."""
    sent: list[Any] = []
    _on_the_wire([_wire_event(e) for e in _stream_events(["ok"])], sent)
    unread = bedrock.converse_stream(_request(), MODEL)
    unread.close()
    stream = bedrock.converse_stream(_request(), MODEL)
    assert sent == []
    assert next(stream) == "ok"
    assert len(sent) == 1
    assert sent[0].url.startswith("https://bedrock-runtime.us-east-1.amazonaws.com/model/")
    assert sent[0].url.endswith("/converse-stream")


@pytest.mark.parametrize("stop_reason", ["end_turn", "max_tokens", "stop_sequence"])
def test_a_stream_yields_each_delta_in_order_then_one_reply(stop_reason: str) -> None:
    """Every non-empty text delta as it comes, then the whole text with the metadata's usage and the
    messageStop's reason (max_tokens: cut by MaxReplyTokens)."""
    events = _stream_events(["Your ", "", "lease ", "ends in May."], stop_reason, tokens=(1234, 56))
    # a reasoning model's thinking streams as reasoningContent deltas: not part of the reply
    events.insert(
        1, {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "hmm"}}, "contentBlockIndex": 0}}
    )
    items, stream = _streamed(events)
    assert items == [
        "Your ",
        "lease ",
        "ends in May.",
        ModelReply(
            text="Your lease ends in May.",
            model=MODEL,
            input_tokens=1234,
            output_tokens=56,
            stop_reason=stop_reason,
            guardrail_intervened=False,
        ),
    ]
    assert stream.closed == 1  # read to its end, then closed before the reply is handed over


def test_a_stream_parsed_from_the_wire_yields_its_deltas_and_reply() -> None:
    """Real frames through botocore's EventStream: several events may share a chunk, and one event
    may span two."""
    frames = [_wire_event(e) for e in _stream_events(["Hel", "lo ", "there"], "max_tokens", (9, 3))]
    body = b"".join(frames)
    cut = len(frames[0]) + len(frames[1]) // 2  # the first delta is split across chunks
    raw = _on_the_wire([body[:cut], body[cut:]])
    items = list(bedrock.converse_stream(_request(), MODEL))
    assert items == [
        "Hel",
        "lo ",
        "there",
        ModelReply(
            text="Hello there", model=MODEL, input_tokens=9, output_tokens=3, stop_reason="max_tokens"
        ),
    ]
    assert raw.closed == 1


BLOCKED = "Sorry, I can't help with that request."


@pytest.mark.parametrize(
    ("deltas", "text"),
    [
        ([BLOCKED], BLOCKED),  # the input blocked: the guardrail's message is the whole reply
        (["Your lease ", "ends", BLOCKED], f"Your lease ends{BLOCKED}"),  # the output blocked mid-reply
    ],
    ids=["input-blocked", "output-blocked-mid-reply"],
)
def test_a_guardrail_intervention_in_a_stream_is_the_text_the_user_saw(deltas: list[str], text: str) -> None:
    """In sync mode Bedrock streams only checked chunks; when the guardrail intervenes it streams its
    blocked message as text deltas and stops with guardrail_intervened. The reply is every delta the
    user saw, marked as an intervention."""
    items, _ = _streamed(
        _stream_events(deltas, "guardrail_intervened", tokens=(40, 0)), guardrail=Guardrail("g", "1")
    )
    assert items[:-1] == deltas
    reply = items[-1]
    assert isinstance(reply, ModelReply)
    assert (reply.text, reply.stop_reason, reply.guardrail_intervened) == (text, "guardrail_intervened", True)
    assert (reply.input_tokens, reply.output_tokens) == (40, 0)


STREAM_EXCEPTIONS = [
    ("throttlingException", ModelBusyError, BUSY),
    ("serviceUnavailableException", ModelBusyError, UNAVAILABLE),
    ("internalServerException", ModelBusyError, UNAVAILABLE),
    (
        "modelStreamErrorException",
        ModelFailedError,
        "The model failed while answering; retry with the same message_id.",
    ),
    (
        "validationException",
        ModelFailedError,
        "Bedrock refused the request (a ModelId, guardrail or MaxReplyTokens the model does not accept): "
        "check the chat function's logs.",
    ),
]


@pytest.mark.parametrize(
    ("name", "error_type", "message"), STREAM_EXCEPTIONS, ids=[s[0] for s in STREAM_EXCEPTIONS]
)
def test_an_in_stream_exception_from_the_wire_becomes_its_model_error(
    name: str,
    error_type: type[ChatVaultError],
    message: str,
    logs: Logs,
) -> None:
    """A 200 whose stream later carries an exception frame: botocore raises it while the stream is read,
    as an EventStreamError whose code is the frame's camelCase name. It maps as the same-named
    ClientError code, after the deltas already yielded, and the stream is closed."""
    events = _stream_events([REPLY_SECRET])
    raw = _on_the_wire(
        [_wire_event(events[0]), _wire_event(events[1]), _wire_exception(name, f"Bedrock says {name}")]
    )
    items: list[str | ModelReply] = []
    with pytest.raises(error_type) as raised:
        _drain(bedrock.converse_stream(_request(turns=3, system=SYSTEM), MODEL), items)

    assert items == [REPLY_SECRET]
    _assert_mapped(raised.value, error_type, message)
    assert raw.closed == 1
    logs.assert_failed_once_without_content(name[0].upper() + name[1:], f"Bedrock says {name}")


@pytest.mark.parametrize(
    ("name", "error_type", "message"), STREAM_EXCEPTIONS, ids=[s[0] for s in STREAM_EXCEPTIONS]
)
def test_an_in_stream_exception_handed_over_as_an_event_fails_alike(
    name: str, error_type: type[ChatVaultError], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = [*_stream_events(["Your lease "])[:2], {name: {"message": "stream failed"}}]
    items: list[str | ModelReply] = []
    with _stubbed(events) as stream, pytest.raises(error_type) as raised:
        _drain(bedrock.converse_stream(_request(), MODEL), items)
    assert items == ["Your lease "]
    assert (type(raised.value), raised.value.message) == (error_type, message)
    assert stream.closed == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "model call failed"]
    assert (record.error_code, record.cause) == (name[0].upper() + name[1:], "stream failed")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("exc_type", "error_type", "message"), NETWORK_ERRORS, ids=[n[0].__name__ for n in NETWORK_ERRORS]
)
def test_a_stream_that_cannot_be_opened_is_tried_once(
    exc_type: type[Exception],
    error_type: type[ChatVaultError],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[str] = []

    def fail(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        raise exc_type(endpoint_url=request.url)

    bedrock.client().meta.events.register("before-send.bedrock-runtime.ConverseStream", fail)
    with pytest.raises(error_type) as raised:
        list(bedrock.converse_stream(_request(), MODEL))
    assert len(attempts) == 1
    assert (type(raised.value), raised.value.message) == (error_type, message)
    assert [r.error_code for r in caplog.records if r.getMessage() == "model call failed"] == [
        exc_type.__name__
    ]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("failure", "error_type", "code"),
    [
        (
            urllib3.exceptions.ReadTimeoutError(None, "", "Read timed out."),
            ModelTimeoutError,
            "ReadTimeoutError",
        ),
        (
            urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(12 bytes read)"),
            ModelBusyError,
            "ConnectionClosedError",
        ),
    ],
    ids=["read-timeout", "connection-broken"],
)
def test_a_network_failure_mid_stream_becomes_its_model_error(
    failure: Exception,
    error_type: type[ChatVaultError],
    code: str,
    logs: Logs,
) -> None:
    """The EventStream reads the raw urllib3 response: a read timeout or a broken connection between
    chunks arrives as urllib3's error, not botocore's. Each maps as botocore's own would (a timeout,
    Bedrock unreachable), logged with the endpoint only."""
    events = _stream_events([REPLY_SECRET])
    raw = _on_the_wire([_wire_event(events[0]) + _wire_event(events[1]), failure])
    items: list[str | ModelReply] = []
    with pytest.raises(error_type) as raised:
        _drain(bedrock.converse_stream(_request(turns=3, system=SYSTEM), MODEL), items)
    assert items == [REPLY_SECRET]
    _assert_mapped(raised.value, error_type, None)
    assert raw.closed == 1
    logs.assert_failed_once_without_content(code)
    (record,) = logs.failures()
    assert "bedrock-runtime.us-east-1.amazonaws.com" in record.cause  # type: ignore[attr-defined]


def test_a_malformed_stream_fails_without_logging_its_bytes(logs: Logs) -> None:
    events = _stream_events([REPLY_SECRET])
    corrupt = bytearray(_wire_event(events[1]))
    corrupt[-1] ^= 0xFF  # the message checksum no longer matches
    raw = _on_the_wire([_wire_event(events[0]), bytes(corrupt)])
    with pytest.raises(ModelFailedError) as raised:
        list(bedrock.converse_stream(_request(turns=3, system=SYSTEM), MODEL))
    assert raised.value.message == FAILED_DEFAULT
    assert raw.closed == 1
    logs.assert_failed_once_without_content("ChecksumMismatch", "")


def test_a_stream_that_ends_before_its_stop_is_not_a_reply(caplog: pytest.LogCaptureFixture) -> None:
    """Deltas, then the end of the stream with no messageStop: the reply is not whole, and is not
    handed over as one. The caller retries."""
    items: list[str | ModelReply] = []
    with _stubbed(_stream_events(["Your lease "])[:2]) as stream, pytest.raises(ModelBusyError) as raised:
        _drain(bedrock.converse_stream(_request(), MODEL), items)
    assert items == ["Your lease "]
    assert raised.value.message == UNAVAILABLE
    assert stream.closed == 1
    assert [r.error_code for r in caplog.records if r.getMessage() == "model call failed"] == [  # type: ignore[attr-defined]
        "ConnectionClosedError"
    ]


@pytest.mark.parametrize(
    ("events", "stop_reason"),
    [
        (_stream_events([]), "end_turn"),
        (_stream_events(["", ""], "max_tokens"), "max_tokens"),
        (
            [
                {
                    "contentBlockDelta": {
                        "delta": {"reasoningContent": {"text": "thinking..."}},
                        "contentBlockIndex": 0,
                    }
                },
                {"messageStop": {"stopReason": "max_tokens"}},
            ],
            "max_tokens",
        ),
        # a guardrail always has a blocked message; one with no text is no reply either (as with Converse)
        (_stream_events([], "guardrail_intervened"), "guardrail_intervened"),
    ],
    ids=["no-deltas", "blank-deltas", "reasoning-only", "intervened-without-text"],
)
def test_a_stream_without_text_fails(
    events: list[dict[str, Any]], stop_reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    items: list[str | ModelReply] = []
    with (
        _stubbed(events) as stream,
        pytest.raises(ModelFailedError, match=r"^The model returned an empty reply\.$"),
    ):
        _drain(bedrock.converse_stream(_request(), MODEL), items)
    assert items == []
    assert stream.closed == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "model returned an empty reply"]
    assert (record.stop_reason, record.model) == (stop_reason, MODEL)  # type: ignore[attr-defined]


def test_stopping_a_stream_early_closes_it_and_reads_no_further(caplog: pytest.LogCaptureFixture) -> None:
    """A user's Stop: the caller closes the iterator after a delta. The EventStream is closed at once
    (its HTTP connection goes, which stops the model), nothing more is read, no reply is made and
    nothing fails."""
    caplog.set_level(logging.DEBUG)
    with _stubbed(_stream_events(["Your ", "lease ", "ends in May."])) as stream:
        reply = bedrock.converse_stream(_request(), MODEL)
        assert next(reply) == "Your "
        assert stream.closed == 0
        reply.close()
        assert stream.closed == 1
        assert stream.read == 2  # messageStart and the first delta
        assert list(reply) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_stopping_a_stream_from_the_wire_closes_its_http_response() -> None:
    raw = _on_the_wire([_wire_event(e) for e in _stream_events(["Your ", "lease"])])
    reply = bedrock.converse_stream(_request(), MODEL)
    assert next(reply) == "Your "
    reply.close()
    assert raw.closed == 1


class _Chunks(BaseHTTPRequestHandler):
    """A loopback ConverseStream: each frame after its delay, then (when `stall`) no more bytes until
    the test ends, without ending the response."""

    protocol_version = "HTTP/1.1"
    frames: ClassVar[list[tuple[float, bytes]]] = []
    stall: ClassVar[bool] = False
    release: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for delay, frame in self.frames:
                time.sleep(delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            if self.stall:
                self.release.wait(10)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client closed the connection

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Chunks]]:
    """The cached client pointed at a loopback ConverseStream, with a 0.3 s read timeout."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chunks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(bedrock, "MODEL_READ_TIMEOUT_S", 0.3)
    bedrock.client.cache_clear()
    _Chunks.release = threading.Event()
    yield _Chunks
    _Chunks.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_read_timeout_bounds_each_chunk_not_the_whole_stream(loopback: type[_Chunks]) -> None:
    """Chunks that keep coming may stream for longer than the read timeout; a silence longer than it
    between two chunks fails the stream as a model timeout."""
    events = _stream_events(["a", "b", "c", "d"])
    loopback.frames = [(0.1, _wire_event(e)) for e in events]  # 0.8 s in all, 0.1 s apart
    loopback.stall = False
    started = time.monotonic()
    items = list(bedrock.converse_stream(_request(), MODEL))
    assert time.monotonic() - started > bedrock.MODEL_READ_TIMEOUT_S
    assert items[-1] == ModelReply(
        text="abcd", model=MODEL, input_tokens=120, output_tokens=34, stop_reason="end_turn"
    )

    loopback.frames = [(0, _wire_event(e)) for e in events[:2]]
    loopback.stall = True
    seen: list[str | ModelReply] = []
    with pytest.raises(ModelTimeoutError):
        _drain(bedrock.converse_stream(_request(), MODEL), seen)
    assert seen == ["a"]
