"""The message events' two round trips (logic/publish_message_events.py): what the table's stream
(keys only) does not say about a new message, read without its content, and the events sent to the
bot's FIFO queue."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import batched

from chatvault.core.settings import get_settings
from chatvault.dal.aws.clients import client
from chatvault.dal.aws.items import MessageItem
from chatvault.models.api import MessageEvent

# A projection: the message's id, role and time, never its content or metadata
_FACTS = ["pk", "sk", "kind", "message_id", "role", "created_at"]
SEND_BATCH = 10  # SendMessageBatch's largest batch


def facts(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], MessageItem]:
    """The messages still stored among `keys` (session id, sort key), by key: one strongly consistent
    BatchGetItem per 100 keys (PynamoDB retries the keys DynamoDB leaves unprocessed). A message
    erased or expired since it was written is absent."""
    found = MessageItem.batch_get(list(dict.fromkeys(keys)), consistent_read=True, attributes_to_get=_FACTS)
    return {(item.pk, item.sk): item for item in found}


def send(events: Sequence[MessageEvent]) -> int:
    """Send the events in order, 10 to a request, stopping at the first one refused: the number sent.
    Each is in its session's message group (FIFO: a session's events arrive in order) and is
    deduplicated by its message's place (a retry within 5 minutes is dropped by SQS)."""
    sqs, url = client("sqs"), get_settings().events_queue_url
    sent = 0
    for chunk in batched(events, SEND_BATCH, strict=False):
        answer = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": event.model_dump_json(),
                    "MessageGroupId": event.session_id,
                    "MessageDeduplicationId": f"{event.session_id}:{event.position}",
                }
                for index, event in enumerate(chunk)
            ],
        )
        refused = sorted(int(entry["Id"]) for entry in answer.get("Failed", []))
        if refused:
            return sent + refused[0]
        sent += len(chunk)
    return sent
