"""The model behind a chat: Amazon Bedrock's Converse API, one request per reply.

No SDK retries. The client makes exactly one attempt (`total_max_attempts=1`). A throttled or failed
call becomes a 503/504/502 at once; the chat's caller retries with the same message_id, and the stored
user message is answered then. Retrying inside the call would spend the user's time on backoff sleeps
that API Gateway's 30 s limit does not leave room for.

Timeouts. The chat function has 28 s, and API Gateway gives up at 30 s. A model call gets
MODEL_READ_TIMEOUT_S (22 s) to answer and CONNECT_TIMEOUT_S (2 s) to connect, so the storage round
trips before and after it (reading the history, storing the reply) still fit. The storage clients'
deadline guard (chatvault/deadline.py) is not used here: its per-attempt budget is sized for 3 s
storage calls, not for a model's answer.

Errors (error_of). Only the model errors of chatvault/errors.py leave this module:

    ThrottlingException, ServiceQuotaExceededException            ModelBusyError (busy), Retry-After 5
    ServiceUnavailableException, InternalServerException,
    ModelNotReadyException, connect timeout, no connection         ModelBusyError (unavailable), 5
    ModelTimeoutException, read timeout                            ModelTimeoutError
    AccessDeniedException, ResourceNotFoundException,
    ValidationException, ModelErrorException                       ModelFailedError, saying what to do
    anything else                                                  ModelFailedError (check the logs)

Each is logged once at WARNING with its code and Bedrock's own error message (which names the
request's problem, never the conversation), or for a timeout botocore's (which names the endpoint);
botocore's other errors are logged by class only. The request's content is never logged."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from chatvault.errors import ChatVaultError, ModelBusyError, ModelFailedError, ModelTimeoutError
from chatvault.llm import Guardrail, ModelReply, ModelRequest
from chatvault.observability import logger

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


def converse(request: ModelRequest, model_id: str, guardrail: Guardrail | None = None) -> ModelReply:
    """Ask the model for the reply to the request's last turn."""
    from botocore.exceptions import BotoCoreError, ClientError

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
        }
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
    usage = response.get("usage", {})
    return ModelReply(
        text=text,
        model=model_id,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
        stop_reason=stop_reason,
        guardrail_intervened=stop_reason == "guardrail_intervened",
    )


def error_of(exc: Exception, *, model_id: str | None = None) -> ChatVaultError:
    """The model error a failed Converse call becomes (the table above), its cause logged once."""
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
