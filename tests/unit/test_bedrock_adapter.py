"""The Bedrock Converse adapter (chatvault/llm/bedrock.py), against botocore's Stubber on the real cached
client (moto has no Converse): the request's exact shape, the reply's mapping, and what every failure
becomes, each logged with its code and never with the conversation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from chatvault.errors import ChatVaultError, ModelBusyError, ModelFailedError, ModelTimeoutError
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


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return out + err + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)


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


@pytest.mark.parametrize(
    ("code", "status", "error_type", "message"), CLIENT_ERRORS, ids=[c[0] for c in CLIENT_ERRORS]
)
def test_every_bedrock_error_becomes_its_model_error_and_is_logged_without_the_conversation(
    code: str,
    status: int,
    error_type: type[ChatVaultError],
    message: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    cause = f"Bedrock says {code} happened"
    with Stubber(bedrock.client()) as stub:
        stub.add_client_error("converse", code, cause, http_status_code=status)
        with pytest.raises(error_type) as raised:
            bedrock.converse(_request(turns=3, system=SYSTEM), MODEL)

    assert type(raised.value) is error_type
    assert raised.value.message == message
    assert raised.value.__cause__ is None  # `from None`: the botocore error stays out of the traceback
    assert raised.value.__suppress_context__
    if error_type is ModelBusyError:
        assert raised.value.retry_after == 5  # type: ignore[attr-defined]

    records = [r for r in caplog.records if r.getMessage() == "model call failed"]
    assert len(records) == 1  # logged once
    assert records[0].levelno == logging.WARNING
    assert (records[0].error_code, records[0].cause, records[0].model) == (code, cause, MODEL)  # type: ignore[attr-defined]
    logged = _logged(caplog, capfd)
    assert code in logged
    for text in (SECRET, SYSTEM, "answer #1"):
        assert text not in logged


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
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """botocore would retry timeouts and refused connections; this client sends once and fails."""
    caplog.set_level(logging.DEBUG)
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
    assert type(raised.value) is error_type
    assert raised.value.message == message
    if error_type is ModelBusyError:
        assert raised.value.retry_after == 5  # type: ignore[attr-defined]
    records = [r for r in caplog.records if r.getMessage() == "model call failed"]
    assert [r.error_code for r in records] == [exc_type.__name__]  # type: ignore[attr-defined]
    logged = _logged(caplog, capfd)
    for text in (SECRET, SYSTEM, "answer #1"):
        assert text not in logged


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


def test_a_local_botocore_error_is_logged_without_its_text(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """botocore's own errors (parameter validation, for one) may quote a parameter's value: only
    their class is logged."""
    from botocore.exceptions import ParamValidationError

    exc = ParamValidationError(
        report=f"Invalid type for parameter messages[0].content[0].text, value: {SECRET}"
    )
    error = bedrock.error_of(exc, model_id=MODEL)
    assert type(error) is ModelFailedError
    assert error.message == FAILED_DEFAULT
    (record,) = [r for r in caplog.records if r.getMessage() == "model call failed"]
    assert record.error_code == "ParamValidationError"  # type: ignore[attr-defined]
    assert SECRET not in _logged(caplog, capfd)


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
