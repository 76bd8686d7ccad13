"""Tell the bot of each stored message (PublishMessageEventsFunction, the sessions table's stream).

The stream is keys only: a stream record outlives an erase by up to a day, so it holds nothing an erase
must reach. Its filter lets only new message items through (INSERT, `sk = M#<position>`), in the order
they were written, per session. For a batch of them this reads the id, role and time of each (one
strongly consistent BatchGetItem, a projection without content) and sends one event per message to
the FIFO queue, in the stream's order, the session as the message group. A message erased or expired
before it is read has no event: there is nothing left to answer.

At least once, never out of order: when a send is refused, the record it came from is reported as the
batch's first failure, and Lambda retries from there (the events before it are not sent again; one
sent again within 5 minutes is dropped by the queue's deduplication, and after that the bot's reply id,
derived from the message's, makes a second answer a replay)."""

from __future__ import annotations

from dataclasses import dataclass

from chatvault.core import clock
from chatvault.core.observability import logger, metrics
from chatvault.dal import message_events
from chatvault.dal.aws.keys import MESSAGE_PREFIX
from chatvault.models.api import MessageEvent


@dataclass(frozen=True)
class NewMessage:
    """A stream record's part that matters: its place in the stream and the message item's keys."""

    sequence_number: str
    session_id: str
    sort_key: str


def publish(records: list[NewMessage]) -> str | None:
    """Send the events of `records`, in order: None when every one was sent (or had nothing left to
    send), else the sequence number of the first record not sent, for Lambda to retry from."""
    messages = [r for r in records if r.sort_key.startswith(MESSAGE_PREFIX)]
    stored = message_events.facts([(r.session_id, r.sort_key) for r in messages])
    events, origins = [], []
    for record in messages:
        item = stored.get((record.session_id, record.sort_key))
        if item is None:
            continue
        events.append(
            MessageEvent(
                session_id=record.session_id,
                message_id=item.message_id,
                position=record.sort_key.removeprefix(MESSAGE_PREFIX),
                role=item.role,
                created_at=clock.iso(item.created_at),
            )
        )
        origins.append(record.sequence_number)
    sent = message_events.send(events)
    metrics.add_metric(name="MessageEventsPublished", unit="Count", value=sent)
    gone = len(messages) - len(events)
    if gone:
        logger.info("messages gone before their event was sent", extra={"gone": gone})
    if sent < len(events):
        logger.warning("the queue refused an event; retried from it", extra={"sent": sent, "of": len(events)})
        return origins[sent]
    return None
