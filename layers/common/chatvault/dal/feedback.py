"""Feedback on replies (PUT/DELETE .../messages/{message_id}/feedback, logic/message_feedback.py).

A message's feedback is stored on the message item itself (`sealed_feedback`, under the conversation's
key and bound to the item, as its content is; a legacy session's message keeps it as plaintext
`feedback`), so every read of the history carries it at no extra cost, and whatever erases or expires
the message (the panic button, expiry, a shorter retention) takes its feedback with it: no item of
its own to forget.

A message is addressed by its id, and messages are keyed by position: the message is found by
Queries of the history, newest first (feedback is given on recent replies, so usually within the
first page), reading its pages' items whole: a cost the caller bounds (FeedbackRateLimit an hour)."""

from __future__ import annotations

from typing import Any

from chatvault.dal import history
from chatvault.dal.aws.items import SEALED_FEEDBACK, MessageItem, compact_json, seal_text
from chatvault.dal.aws.keys import LAST_MESSAGE, MESSAGE_PREFIX
from chatvault.dal.aws.retry import storage_errors, written
from chatvault.models.domain import Feedback, MessageRecord

FIND_PAGE = 50


@storage_errors
def find(session_id: str, message_id: str, key: bytes | None) -> MessageRecord | None:
    """The session's message with this id, opened under its key; None when there is none (or it does
    not open)."""
    after: str | None = None
    while True:
        items, more = history.query(
            session_id, MESSAGE_PREFIX, LAST_MESSAGE, descending=True, limit=FIND_PAGE, after=after
        )
        for raw in items:
            if history.is_message(raw) and raw["message_id"]["S"] == message_id:
                found = history.messages_of([raw], key)
                return found[0] if found else None
        if not more or not items:
            return None
        after = items[-1]["sk"]["S"].removeprefix(MESSAGE_PREFIX)


@storage_errors
def write(message: MessageRecord, feedback: Feedback | None, key: bytes | None) -> bool:
    """Set (or, None, remove) the message's feedback: one UpdateItem, on condition that the message is
    still there (an erase or TTL may have removed it since it was found). False when it is not."""
    sort_key = MESSAGE_PREFIX + message.position
    actions: list[Any]
    if feedback is None:
        actions = [MessageItem.feedback.remove(), MessageItem.sealed_feedback.remove()]
    else:
        text = compact_json(feedback.model_dump(mode="json", exclude_none=True))
        if key is None:  # a legacy session: its messages are plaintext too
            actions = [MessageItem.feedback.set(text)]
        else:
            sealed = seal_text(key, message.session_id, sort_key, SEALED_FEEDBACK, text)
            actions = [MessageItem.sealed_feedback.set(sealed), MessageItem.feedback.remove()]
    item = MessageItem(message.session_id, sort_key)
    condition = MessageItem.pk.exists() & (MessageItem.message_id == message.message_id)
    return written(lambda: item.update(actions=actions, condition=condition))
