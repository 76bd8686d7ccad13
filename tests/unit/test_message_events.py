"""The message events (logic/publish_message_events.py): the table's stream, keys only, turned into
one event per stored message, in order, without content, on the bot's FIFO queue."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from infra.template import Stack
from tests.helpers import call, context, new_message_records

pytestmark = pytest.mark.usefixtures("aws")

STACK = Stack.from_template()
QUEUE_URL = STACK.functions()["PublishMessageEventsFunction"].environment["EVENTS_QUEUE_URL"]


def _publish(records: list[dict[str, Any]]) -> dict[str, Any]:
    from functions.publish_message_events.app import lambda_handler

    return lambda_handler({"Records": records}, context("PublishMessageEventsFunction"))


def _queued() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=QUEUE_URL, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
        ).get("Messages", [])
        if not batch:
            return received
        for message in batch:
            received.append(
                {**json.loads(message["Body"]), "_group": message["Attributes"]["MessageGroupId"]}
            )
            sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=message["ReceiptHandle"])


def _session() -> tuple[str, str]:
    created = call(
        "POST", "/api/v1/sessions", body={"title": "SECRET-TITLE", "metadata": {"k": "SECRET-META"}}
    )
    return created.body["session_id"], created.body["session_token"]


def _append(session_id: str, token: str, content: str) -> dict[str, Any]:
    reply = call(
        "POST",
        f"/api/v1/sessions/{session_id}/messages",
        body={"role": "user", "content": content},
        token=token,
    )
    assert reply.status == 201, reply.body
    return dict(reply.body)


def test_each_stored_message_becomes_one_event_without_content_in_order() -> None:
    session_id, token = _session()
    first = _append(session_id, token, "SECRET-ONE")
    second = _append(session_id, token, "SECRET-TWO")
    reply = call(
        "POST",
        f"/api/v1/service/sessions/{session_id}/messages",
        body={"role": "assistant", "content": "SECRET-THREE"},
        service=True,
    )
    records = new_message_records()
    assert len(records) == 3  # the session item, its profile and its updates are filtered out

    assert _publish(records) == {"batchItemFailures": []}

    events = _queued()
    assert [(e["message_id"], e["role"]) for e in events] == [
        (first["message_id"], "user"),
        (second["message_id"], "user"),
        (reply.body["message_id"], "assistant"),
    ]
    assert all(e["session_id"] == session_id and e["_group"] == session_id for e in events)
    assert [e["created_at"] for e in events] == [
        first["created_at"],
        second["created_at"],
        reply.body["created_at"],
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert all(p.isdigit() for p in positions)
    assert set(events[0]) == {"session_id", "message_id", "position", "role", "created_at", "_group"}
    assert "SECRET" not in json.dumps(events)


def test_a_repeated_batch_is_dropped_by_the_queue() -> None:
    session_id, token = _session()
    _append(session_id, token, "hello")
    records = new_message_records()
    _publish(records)
    _publish(records)  # Lambda retried the batch
    assert len(_queued()) == 1


def test_a_message_erased_before_its_event_is_sent_has_none() -> None:
    session_id, token = _session()
    _append(session_id, token, "hello")
    records = new_message_records()
    assert call("DELETE", f"/api/v1/sessions/{session_id}", token=token).status == 200

    assert _publish(records) == {"batchItemFailures": []}
    assert _queued() == []


def test_a_refused_send_is_retried_from_its_record_and_nothing_after_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id, token = _session()
    for text in ("one", "two", "three"):
        _append(session_id, token, text)
    records = new_message_records()
    from chatvault.dal.aws import clients

    sqs = clients.client("sqs")
    real = sqs.send_message_batch

    def refuse_the_second(**kwargs: Any) -> dict[str, Any]:
        kept = kwargs["Entries"][:1]
        answer = real(**{**kwargs, "Entries": kept})
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in kwargs["Entries"][1:]
        ]
        return {**answer, "Failed": failed}

    monkeypatch.setattr(sqs, "send_message_batch", refuse_the_second)
    result = _publish(records)
    assert result == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    monkeypatch.undo()

    _publish(records[1:])  # Lambda's retry, from the failed record on
    assert [e["position"] for e in _queued()] == [r["dynamodb"]["Keys"]["sk"]["S"][2:] for r in records]
