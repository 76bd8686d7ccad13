"""The stand-in model: deterministic, no AWS account, and it shows that it received the history.

Its reply is `You said: "<the newest user message>".`, followed, when the context it was given holds
earlier user messages, by ` Earlier you said: "<first>"; "<second>"; …` (oldest first).

A user message that is exactly `/stand-in throttle`, `/stand-in timeout` or `/stand-in error` makes the
first attempt at its reply fail the way Bedrock does when throttled (503 model_unavailable), when too
slow for the deadline (504 model_timeout) and on a model error (502 model_unavailable): the same
botocore errors, through the Bedrock adapter's own mapping. A retry with the same message_id (attempt
2 and later) is answered, so every failure path, and its recovery, runs through HTTP on the local
stack. STAND_IN_DELAY_MS delays each answer (0 by default), so that the reply's wait can be seen.

Streamed (`stream`), the same reply comes word by word, each word (with the space before it) a delta,
STAND_IN_WORD_MS apart (40 by default): a reply visibly grows, and a test can see the first delta
arrive well before the last."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

from botocore.exceptions import ClientError, ReadTimeoutError

from chatvault.llm import STAND_IN, ModelReply, ModelRequest

THROTTLE = "/stand-in throttle"
TIMEOUT = "/stand-in timeout"
ERROR = "/stand-in error"


def _client_error(code: str, status: int, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Converse",
    )


FAILURES: dict[str, Callable[[], Exception]] = {
    THROTTLE: lambda: _client_error("ThrottlingException", 429, "Too many requests, please wait."),
    TIMEOUT: lambda: ReadTimeoutError(endpoint_url="https://bedrock-runtime.stand-in/model/converse"),
    ERROR: lambda: _client_error("ModelErrorException", 424, "The model failed to process the request."),
}


def reply_text(request: ModelRequest) -> str:
    said = [(turn.role, part) for turn in request.turns for part in turn.parts]
    newest = said[-1][1]
    earlier = [text for role, text in said[:-1] if role == "user"]
    text = f'You said: "{newest}".'
    if earlier:
        text += " Earlier you said: " + "; ".join(f'"{t}"' for t in earlier)
    return text


def answer(request: ModelRequest) -> ModelReply:
    from chatvault.core.settings import get_settings
    from chatvault.llm import bedrock

    newest = request.turns[-1].parts[-1]
    if request.attempt == 1 and newest in FAILURES:
        raise bedrock.error_of(FAILURES[newest](), model_id=STAND_IN)
    delay_ms = get_settings().stand_in_delay_ms
    if delay_ms:
        time.sleep(delay_ms / 1000)
    text = reply_text(request)
    words = len(text.split())
    if words > request.max_tokens:  # as a model cut by MaxReplyTokens (a word counts as a token)
        return ModelReply(
            text=" ".join(text.split()[: request.max_tokens]),
            model=STAND_IN,
            input_tokens=_tokens(request),
            output_tokens=request.max_tokens,
            stop_reason="max_tokens",
        )
    return ModelReply(
        text=text, model=STAND_IN, input_tokens=_tokens(request), output_tokens=words, stop_reason="end_turn"
    )


def stream(request: ModelRequest) -> Iterator[str | ModelReply]:
    """`answer`, word by word: the same failures (before the first delta), the same reply."""
    from chatvault.core.settings import get_settings

    whole = answer(request)  # fails as `answer` does, and waits STAND_IN_DELAY_MS
    pause = get_settings().stand_in_word_ms / 1000
    for n, word in enumerate(re.findall(r"\s*\S+", whole.text)):
        if n and pause:
            time.sleep(pause)
        yield word
    yield whole


def _tokens(request: ModelRequest) -> int:
    """The stand-in's token count: words, the system prompt's included."""
    return len(request.system.split()) + sum(len(p.split()) for t in request.turns for p in t.parts)
