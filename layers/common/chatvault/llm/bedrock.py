"""The model behind a chat: Amazon Bedrock's Converse API, one request per reply.

No SDK retries. The client makes exactly one attempt (`total_max_attempts=1`). A throttled or failed
call becomes a 503/504/502 at once; the chat's caller retries with the same message_id, and the stored
user message is answered then. Retrying inside the call would spend the user's time on backoff sleeps
that API Gateway's 30 s limit does not leave room for.

Timeouts. The chat function has 28 s, and API Gateway gives up at 30 s. A model call gets
MODEL_READ_TIMEOUT_S (22 s) to answer and CONNECT_TIMEOUT_S (2 s) to connect, so the storage round
trips before and after it (reading the history, storing the reply) still fit. The storage clients'
deadline guard (chatvault/core/deadline.py) is not used here: its per-attempt budget is sized for 3 s
storage calls, not for a model's answer.

Streaming (converse_stream). ConverseStream answers with an event stream: messageStart,
contentBlockStart/contentBlockDelta/contentBlockStop per block, messageStop (the stop reason), then
metadata (usage). The same client serves it, so MODEL_READ_TIMEOUT_S bounds the wait for each chunk
of the stream, not the whole reply: a model that keeps writing may stream for longer, and the caller
bounds the whole (it closes the iterator when its own deadline comes). Closing the iterator closes the
HTTP connection, which stops the model. A guardrail is applied in sync mode: every chunk is checked
before it is sent, and when the guardrail intervenes Bedrock streams its blocked message as text
deltas and stops with guardrail_intervened; the reply is then the text the user saw.

Errors (error_of). Only the model errors of chatvault/core/errors.py leave this module:

    ThrottlingException, ServiceQuotaExceededException            ModelBusyError (busy), Retry-After 5
    ServiceUnavailableException, InternalServerException,
    ModelNotReadyException, connect timeout, no connection         ModelBusyError (unavailable), 5
    ModelTimeoutException, read timeout                            ModelTimeoutError
    AccessDeniedException, ResourceNotFoundException,
    ValidationException, ModelErrorException,
    ModelStreamErrorException                                      ModelFailedError, saying what to do
    anything else                                                  ModelFailedError (check the logs)

A stream's own failures arrive while it is read. Bedrock's in-stream exception events
(throttlingException, modelStreamErrorException, ...) surface from botocore as an EventStreamError, a
ClientError whose code is the event's camelCase name: it maps as the same-named code above. A read
timeout or a dropped connection mid-stream surfaces from urllib3, not botocore (the stream reads the
raw HTTP response): it maps as botocore's ReadTimeoutError or ConnectionClosedError would, and so does a
stream that ends before its messageStop.

Each is logged once at WARNING with its code and Bedrock's own error message (which names the
request's problem, never the conversation), or for a timeout botocore's (which names the endpoint);
botocore's other errors are logged by class only. The request's content is never logged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from chatvault.core.errors import ChatVaultError, ModelBusyError, ModelFailedError, ModelTimeoutError
from chatvault.core.observability import logger
from chatvault.llm import Guardrail, ModelReply, ModelRequest

MODEL_READ_TIMEOUT_S = 22.0
CONNECT_TIMEOUT_S = 2.0
RETRY_AFTER_S = 5
_CAUSE_CHARS = 500  # Bedrock's messages are short; a longer one is cut, not logged whole

_BUSY = "The model is busy; retry shortly with the same message_id."
_UNAVAILABLE = "The model is unavailable right now; retry shortly with the same message_id."

_ERRORS: dict[str, Callable[[], ChatVaultError]] = {
    "ThrottlingException": lambda: ModelBusyError(RETRY_AFTER_S, _BUSY),
    "ServiceQuotaExceededException": lambda: ModelBusyError(RETRY_AFTER_S, _BUSY),
    "ServiceUnavailableException": lambda: ModelBusyError(RETRY_AFTER_S, _UNAVAILABLE),
    "InternalServerException": lambda: ModelBusyError(RETRY_AFTER_S, _UNAVAILABLE),
    "ModelNotReadyException": lambda: ModelBusyError(RETRY_AFTER_S, _UNAVAILABLE),
    "ModelTimeoutException": ModelTimeoutError,
    "AccessDeniedException": lambda: ModelFailedError(
        "The chat function may not invoke the model: check ModelId, the model's access in the Bedrock "
        "console, and the function's role."
    ),
    "ResourceNotFoundException": lambda: ModelFailedError(
        "The model ModelId names does not exist in this region: check ModelId."
    ),
    "ValidationException": lambda: ModelFailedError(
        "Bedrock refused the request (a ModelId, guardrail or MaxReplyTokens the model does not "
        "accept): check the chat function's logs."
    ),
    "ModelErrorException": lambda: ModelFailedError(
        "The model failed while answering; retry with the same message_id."
    ),
    # ConverseStream's in-stream modelStreamErrorException: the model failed mid-reply
    "ModelStreamErrorException": lambda: ModelFailedError(
        "The model failed while answering; retry with the same message_id."
    ),
}


@cache
def client() -> Any:
    """The bedrock-runtime client: one attempt per call, the model's own timeouts (see above)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=MODEL_READ_TIMEOUT_S,
    )
    return boto3.session.Session().client("bedrock-runtime", config=config)  # type: ignore[call-overload]


def _params(
    request: ModelRequest, model_id: str, guardrail: Guardrail | None, *, streamed: bool = False
) -> dict[str, Any]:
    """The request of Converse, or of ConverseStream (`streamed`: the guardrail checks every chunk
    before it is sent, so the user never sees what it blocks)."""
    params: dict[str, Any] = {
        "modelId": model_id,
        # A turn of several stored messages (context.py) is one message of several text blocks.
        "messages": [{"role": t.role, "content": [{"text": p} for p in t.parts]} for t in request.turns],
        "inferenceConfig": {"maxTokens": request.max_tokens},
    }
    if request.system:  # Converse refuses a blank system text block
        params["system"] = [{"text": request.system}]
    if guardrail is not None:
        params["guardrailConfig"] = {
            "guardrailIdentifier": guardrail.identifier,
            "guardrailVersion": guardrail.version,
            "trace": "disabled",
            **({"streamProcessingMode": "sync"} if streamed else {}),
        }
    return params


def converse(request: ModelRequest, model_id: str, guardrail: Guardrail | None = None) -> ModelReply:
    """Ask the model for the reply to the request's last turn."""
    from botocore.exceptions import BotoCoreError, ClientError

    params = _params(request, model_id, guardrail)
    try:
        response = client().converse(**params)
    except (ClientError, BotoCoreError) as exc:
        raise error_of(exc, model_id=model_id) from None

    stop_reason = str(response.get("stopReason", ""))
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    # Only text blocks make the reply (a reasoning model also returns reasoningContent blocks). When a
    # guardrail intervenes, the text is the guardrail's blocked-input or blocked-output message.
    text = "".join(block["text"] for block in blocks if "text" in block)
    if not text:
        logger.warning("model returned an empty reply", extra={"stop_reason": stop_reason, "model": model_id})
        raise ModelFailedError("The model returned an empty reply.")
    return _reply(text, model_id, response.get("usage", {}), stop_reason)


def converse_stream(
    request: ModelRequest, model_id: str, guardrail: Guardrail | None = None
) -> Iterator[str | ModelReply]:
    """The reply to the request's last turn as the model writes it: each text delta, then exactly one
    ModelReply (all the deltas joined, usage, stop reason). Nothing is sent before the first `next`.
    Closing the iterator early (a user's Stop) closes the stream and its connection. Failures are the
    model errors `converse` raises, before or between deltas."""
    from botocore.eventstream import ParserError
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError
    from urllib3.exceptions import HTTPError

    params = _params(request, model_id, guardrail, streamed=True)
    try:
        response = client().converse_stream(**params)
    except (ClientError, BotoCoreError) as exc:
        raise error_of(exc, model_id=model_id) from None

    events = response["stream"]
    parts: list[str] = []
    stop_reason: str | None = None
    usage: dict[str, Any] = {}
    try:
        for event in events:
            if "contentBlockDelta" in event:
                # Only text makes the reply (a reasoning model also streams reasoningContent deltas).
                # When the guardrail intervenes, the text is its blocked-input or blocked-output message.
                text = event["contentBlockDelta"].get("delta", {}).get("text")
                if text:
                    parts.append(text)
                    yield text
            elif "messageStop" in event:
                stop_reason = str(event["messageStop"].get("stopReason", ""))
            elif "metadata" in event:
                usage = event["metadata"].get("usage", {})
            else:
                _raise_stream_exception(event)
    except (ClientError, BotoCoreError, HTTPError, ParserError) as exc:
        raise error_of(_read_failure(exc), model_id=model_id) from None
    finally:
        events.close()  # at the end, on a failure, or when the caller stops early: the connection goes

    if stop_reason is None:  # the stream ended without its messageStop: the reply is not whole
        raise error_of(ConnectionClosedError(endpoint_url=client().meta.endpoint_url), model_id=model_id)
    text = "".join(parts)
    if not text:
        logger.warning("model returned an empty reply", extra={"stop_reason": stop_reason, "model": model_id})
        raise ModelFailedError("The model returned an empty reply.")
    yield _reply(text, model_id, usage, stop_reason)


def _raise_stream_exception(event: dict[str, Any]) -> None:
    """botocore raises a stream's exception events (EventStreamError); one handed over as an event
    (`{"throttlingException": {"message": ...}}`) fails the same way."""
    from botocore.exceptions import EventStreamError

    failure = next((key for key in event if key.endswith("Exception")), None)
    if failure is not None:
        body = event[failure]
        cause = str(body.get("message", "")) if isinstance(body, dict) else ""
        raise EventStreamError({"Error": {"Code": failure, "Message": cause}}, "ConverseStream")


def _read_failure(exc: Exception) -> Exception:
    """A failure while reading a stream, as error_of knows it. The stream reads the raw HTTP response,
    so a read timeout or a dropped connection arrives as urllib3's error, not botocore's."""
    from botocore.exceptions import BotoCoreError, ConnectionClosedError, ReadTimeoutError
    from urllib3.exceptions import HTTPError
    from urllib3.exceptions import ReadTimeoutError as RawReadTimeoutError

    if isinstance(exc, BotoCoreError) or not isinstance(exc, HTTPError):
        return exc  # botocore's own (ReadTimeoutError is both), a ClientError, a malformed stream
    endpoint = client().meta.endpoint_url
    failure: Exception
    if isinstance(exc, RawReadTimeoutError):  # no chunk within MODEL_READ_TIMEOUT_S
        failure = ReadTimeoutError(endpoint_url=endpoint)
    else:  # the connection broke mid-stream
        failure = ConnectionClosedError(endpoint_url=endpoint)
    return failure


def error_of(exc: Exception, *, model_id: str | None = None) -> ChatVaultError:
    """The model error a failed Converse or ConverseStream call becomes (the table above), its cause
    logged once."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    error: ChatVaultError
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
        # a stream's exception event names its code in camelCase (throttlingException)
        code = code[:1].upper() + code[1:]
        cause = str(exc.response.get("Error", {}).get("Message", ""))
        make = _ERRORS.get(code)
        error = make() if make is not None else ModelFailedError()
    else:
        # A connection or read timeout's text names the endpoint URL only. Any other error's text is
        # not logged: a parameter validation error, for one, may quote a parameter's value.
        code, cause = type(exc).__name__, str(exc)
        # a connection that could not be made, or that dropped mid-call: Bedrock unreachable for now
        if isinstance(exc, ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError):
            error = ModelBusyError(RETRY_AFTER_S, _UNAVAILABLE)
        elif isinstance(exc, ReadTimeoutError):
            error = ModelTimeoutError()
        else:
            error, cause = ModelFailedError(), ""
    extra = {"error_code": code, "cause": cause[:_CAUSE_CHARS]}
    if model_id is not None:
        extra["model"] = model_id
    logger.warning("model call failed", extra=extra)
    return error


def _reply(text: str, model_id: str, usage: dict[str, Any], stop_reason: str) -> ModelReply:
    """The reply as the service keeps it, from Converse's (or ConverseStream's) text, usage and stop."""
    return ModelReply(
        text=text,
        model=model_id,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        stop_reason=stop_reason,
        guardrail_intervened=stop_reason == "guardrail_intervened",
    )
