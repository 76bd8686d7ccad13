"""The model that answers a chat: Amazon Bedrock's Converse API (bedrock.py) or the deterministic
stand-in (stand_in.py: `make dev`, the tests, and any deployment with ModelId=stand-in).

The logic hands over a ModelRequest (the operator's system prompt and the conversation as Converse
accepts it: context.py builds it from the stored history) and gets a ModelReply, or one of the
model errors of chatvault/core/errors.py: ModelBusyError (503, throttled or unavailable),
ModelTimeoutError (504, no answer in time), ModelFailedError (502, no access, a bad configuration, a
model error). Nothing here stores anything or logs content."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

STAND_IN = "stand-in"


@dataclass(frozen=True)
class Turn:
    """One turn of the conversation as the model sees it (roles alternate, the first is a user's).
    Consecutive stored messages of one role are one turn of several parts: Converse takes them as
    several text blocks of one message (context.py)."""

    role: Literal["user", "assistant"]
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(self.parts)


@dataclass(frozen=True)
class Guardrail:
    """A Bedrock guardrail applied to the model's input and output."""

    identifier: str
    version: str


@dataclass(frozen=True)
class ModelRequest:
    system: str  # the operator's SystemPrompt ("" for none)
    turns: tuple[Turn, ...]  # oldest first; the last is the user message being answered
    max_tokens: int  # MaxReplyTokens
    # 1 for the first attempt at this user message's reply, 2+ for a retry with the same message_id
    # (the stand-in's failure commands fail the first attempt only; Bedrock ignores it)
    attempt: int = 1


@dataclass(frozen=True)
class ModelReply:
    text: str  # never empty
    model: str  # the model id that answered
    input_tokens: int
    output_tokens: int
    # Converse's stopReason: end_turn, max_tokens (cut by MaxReplyTokens), stop_sequence,
    # guardrail_intervened, content_filtered
    stop_reason: str
    guardrail_intervened: bool = False


def answer(request: ModelRequest) -> ModelReply:
    """Ask the deployment's model (settings: ModelId, GuardrailId/GuardrailVersion). The adapters are
    imported on first use: a function that never chats never loads them."""
    from chatvault.core.settings import get_settings

    settings = get_settings()
    if settings.model_id == STAND_IN:
        from chatvault.llm import stand_in

        return stand_in.answer(request)
    from chatvault.llm import bedrock

    return bedrock.converse(request, settings.model_id, _guardrail())


def stream(request: ModelRequest) -> Iterator[str | ModelReply]:
    """The reply as the model writes it: text deltas (str), then exactly one ModelReply (the whole
    text, usage, stop reason). Closing the iterator early stops the model (a user's Stop). Failures
    are the model errors `answer` raises, before or between deltas."""
    from chatvault.core.settings import get_settings

    settings = get_settings()
    if settings.model_id == STAND_IN:
        from chatvault.llm import stand_in

        return stand_in.stream(request)
    from chatvault.llm import bedrock

    return bedrock.converse_stream(request, settings.model_id, _guardrail())


def _guardrail() -> Guardrail | None:
    """The deployment's guardrail (GuardrailId, GuardrailVersion), if it has one."""
    from chatvault.core.settings import get_settings

    settings = get_settings()
    if not settings.guardrail_id:
        return None
    return Guardrail(settings.guardrail_id, settings.guardrail_version or "DRAFT")
