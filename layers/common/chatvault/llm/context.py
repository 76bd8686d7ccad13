"""The conversation as Converse accepts it, from the stored history (the rule docs/API.md states):

- The model sees the session's newest messages: at most ChatContextMessages of them (the new user
  message included) and at most CONTEXT_CHARS characters before the new message, which is always in.
  Older messages are left out, whole.
- Only `user` and `assistant` messages, and none of white space alone (a model refuses blank text;
  a plain append may store one). `system` messages are left out: the operator's SystemPrompt is
  the model's only instruction, so no one who may write a message can instruct the model. `tool`
  messages are left out: the model is given no tools, and Converse accepts a tool result only as the
  answer to its own tool call.
- Converse wants roles to alternate, starting with a user's. Consecutive messages of one role (a user
  message whose reply failed, then the next one; a bot's two replies) become one turn of several text
  blocks, in order; assistant turns before the first user turn are left out."""

from __future__ import annotations

from collections.abc import Sequence

from chatvault.llm import Turn
from chatvault.models.domain import MessageRecord

# Characters of earlier history given to the model at most (about 15,000 tokens): a bound on each
# call's input cost and on the model's context window, whatever MaxMessageChars allows.
CONTEXT_CHARS = 60_000
SEEN_ROLES = ("user", "assistant")


def turns_of(earlier: Sequence[MessageRecord], newest: str, limit: int) -> tuple[Turn, ...]:
    """`earlier`: stored messages before the new user message, oldest first; `newest`: its content;
    `limit`: ChatContextMessages."""
    kept: list[MessageRecord] = []
    budget = CONTEXT_CHARS
    for record in reversed(earlier[-(limit - 1) :] if limit > 1 else []):
        if record.role not in SEEN_ROLES or not record.content.strip():  # a model refuses blank text
            continue
        if len(record.content) > budget:
            break
        budget -= len(record.content)
        kept.append(record)
    kept.reverse()
    turns: list[Turn] = []
    for role, text in [*((r.role, r.content) for r in kept), ("user", newest)]:
        if turns and turns[-1].role == role:
            turns[-1] = Turn(turns[-1].role, (*turns[-1].parts, text))
        elif turns or role == "user":
            turns.append(Turn(role, (text,)))  # type: ignore[arg-type]  # SEEN_ROLES only
    return tuple(turns)
