"""Issue 26, "an event for every user message, and the example bot subscribes", through HTTP on the
local stack: `make dev BOT=echo` (bot_stack) runs the table's stream into PublishMessageEventsFunction,
its events into the FIFO queue, and the example bot (examples/echo_bot) as the queue's subscriber, as
Lambda's event sources would. A user appends with the session token; the bot's reply appears in the
history."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from examples.echo_bot import bot
from tests.integration.local_stack import LocalStack, queue_url, table_items

REPLY_WITHIN_S = 10.0  # a poll of the stream, a publish, a poll of the queue, the bot's two requests
MARKER = "SECRET-MARKER-7Q2"


def _session(stack: LocalStack, **fields: Any) -> tuple[str, dict[str, str]]:
    created = requests.post(f"{stack.api}/api/v1/sessions", json=fields, timeout=30)
    assert created.status_code == 201, created.text
    body = created.json()
    return body["session_id"], {"X-Session-Token": body["session_token"]}


def _append(stack: LocalStack, sid: str, token: dict[str, str], content: str, **extra: Any) -> dict[str, Any]:
    appended = requests.post(
        f"{stack.api}/api/v1/sessions/{sid}/messages",
        json={"role": "user", "content": content, **extra},
        headers=token,
        timeout=30,
    )
    assert appended.status_code == 201, appended.text
    return dict(appended.json())


def _history(stack: LocalStack, sid: str, token: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = requests.get(
            f"{stack.api}/api/v1/sessions/{sid}/messages",
            params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            headers=token,
            timeout=30,
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def _until(condition: Callable[[], Any], within: float, what: str) -> Any:
    ends = time.monotonic() + within
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > ends:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.2)


def _sqs(stack: LocalStack) -> Any:
    return stack.client("sqs")


def _queue_settled(stack: LocalStack) -> bool:
    """No event waiting or being answered."""
    attributes = _sqs(stack).get_queue_attributes(
        QueueUrl=queue_url(stack, "MessageEventsQueue"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


def _replied(history: list[dict[str, Any]]) -> None:
    """Each user message has exactly one reply, after it, whose id is uuid5 of the message's."""
    users = [m for m in history if m["role"] == "user"]
    replies = [m for m in history if m["role"] == "assistant"]
    assert len(replies) == len(users)
    place = {m["message_id"]: index for index, m in enumerate(history)}
    for message in users:
        reply_id = bot.reply_id(message["message_id"])
        assert place[reply_id] > place[message["message_id"]]
        assert history[place[reply_id]]["content"] == f"(stand-in bot) You said: {message['content']}"


def test_the_banner_says_the_bot_answers_and_the_chat_routes_are_off(bot_stack: LocalStack) -> None:
    banner = [line for line in bot_stack.log.read_text().splitlines() if line.startswith("[dev] ")]
    assert any("PublishMessageEventsFunction receives the stream of" in line for line in banner)
    assert any(
        line.startswith("[dev] The echo bot") and "answers the message events" in line for line in banner
    )
    assert any("ModelId= " in line for line in banner)
    sid, token = _session(bot_stack)
    chat = requests.post(
        f"{bot_stack.api}/api/v1/sessions/{sid}/chat", json={"content": "hi"}, headers=token, timeout=30
    )
    assert (chat.status_code, chat.json()["error"]["code"]) == (404, "not_found")


def test_a_user_message_gets_exactly_one_reply_within_seconds(bot_stack: LocalStack) -> None:
    sid, token = _session(bot_stack)
    asked = _append(bot_stack, sid, token, "is anyone there?")

    history = _until(
        lambda: (h := _history(bot_stack, sid, token)) and len(h) >= 2 and h, REPLY_WITHIN_S, "the reply"
    )
    _until(lambda: _queue_settled(bot_stack), REPLY_WITHIN_S, "the queue empty")
    assert _history(bot_stack, sid, token) == history  # nothing more came
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "is anyone there?"),
        ("assistant", "(stand-in bot) You said: is anyone there?"),
    ]
    assert history[1]["message_id"] == str(uuid.uuid5(bot.REPLY_NAMESPACE, asked["message_id"]))


def test_twenty_messages_in_a_row_on_five_sessions_at_once_get_twenty_replies_each(
    bot_stack: LocalStack,
) -> None:
    """Each session's 20 user messages are appended one after the other (not waiting for replies),
    the 5 sessions at once: each message gets one reply, after it, derived from it."""
    sessions = [_session(bot_stack) for _ in range(5)]
    errors: list[BaseException] = []

    def user(sid: str, token: dict[str, str]) -> None:
        try:
            for n in range(20):
                _append(bot_stack, sid, token, f"message {n} of {sid[:8]}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=session) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors

    for sid, token in sessions:
        history = _until(
            lambda sid=sid, token=token: (h := _history(bot_stack, sid, token)) and len(h) >= 40 and h,
            60,
            f"40 messages in {sid}",
        )
        assert len(history) == 40
        _replied(history)
    _until(lambda: _queue_settled(bot_stack), REPLY_WITHIN_S, "the queue empty")
    for sid, token in sessions:
        assert len(_history(bot_stack, sid, token)) == 40


def _event_of(stack: LocalStack, sid: str, message: dict[str, Any]) -> dict[str, str]:
    """The message's event as the publisher writes it (its position is the item's sort key)."""
    (item,) = [
        i
        for i in table_items(stack)
        if i["pk"]["S"] == sid and i.get("message_id", {}).get("S") == message["message_id"]
    ]
    return {
        "session_id": sid,
        "message_id": message["message_id"],
        "position": item["sk"]["S"].removeprefix("M#"),
        "role": "user",
        "created_at": message["created_at"],
    }


def test_a_duplicated_event_stores_nothing_twice(bot_stack: LocalStack) -> None:
    sid, token = _session(bot_stack)
    asked = _append(bot_stack, sid, token, "once")
    _until(lambda: len(_history(bot_stack, sid, token)) == 2, REPLY_WITHIN_S, "the reply")
    _until(lambda: _queue_settled(bot_stack), REPLY_WITHIN_S, "the queue empty")

    # the same event again, past the queue's deduplication (a new id): delivered, answered as a replay
    event = _event_of(bot_stack, sid, asked)
    for copy in range(2):
        _sqs(bot_stack).send_message(
            QueueUrl=queue_url(bot_stack, "MessageEventsQueue"),
            MessageBody=json.dumps(event),
            MessageGroupId=sid,
            MessageDeduplicationId=f"{sid}:copy-{copy}",
        )
    time.sleep(0.5)
    _until(lambda: _queue_settled(bot_stack), REPLY_WITHIN_S, "the copies answered")

    history = _history(bot_stack, sid, token)
    assert [m["role"] for m in history] == ["user", "assistant"]
    _replied(history)


def test_the_panic_button_while_replies_are_in_flight_leaves_nothing_of_the_session(
    bot_stack: LocalStack,
) -> None:
    failed_before = bot_stack.log.read_text().count("[bot] EchoBotFunction failed")
    doomed = [_session(bot_stack, title=f"doomed {n}") for n in range(3)]
    for sid, token in doomed:
        for n in range(5):
            _append(bot_stack, sid, token, f"reply to this {n}")
        erased = requests.delete(f"{bot_stack.api}/api/v1/sessions/{sid}", headers=token, timeout=30)
        assert erased.status_code == 200, erased.text

    time.sleep(1.0)  # the stream's last records published
    _until(lambda: _queue_settled(bot_stack), 30, "every event answered or dropped")
    time.sleep(1.0)
    for sid, _token in doomed:
        assert [item for item in table_items(bot_stack) if sid in json.dumps(item, default=repr)] == []
    # the bot met 404s (the session gone while it read or wrote): done, never a failure to retry
    assert bot_stack.log.read_text().count("[bot] EchoBotFunction failed") == failed_before


def test_the_event_carries_no_content(stack: LocalStack) -> None:
    """No subscriber on this stack: the event is read from the queue itself."""
    url = queue_url(stack, "MessageEventsQueue")
    sqs = _sqs(stack)
    sqs.purge_queue(QueueUrl=url)
    sid, token = _session(stack, title=f"title {MARKER}", metadata={"note": MARKER})
    asked = _append(stack, sid, token, f"content {MARKER}", metadata={"attributes": {"k": MARKER}})

    def ours() -> dict[str, Any] | None:
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
        ).get("Messages", []):
            if json.loads(message["Body"]).get("session_id") == sid:
                return dict(message)
        return None

    message = _until(ours, REPLY_WITHIN_S, "the message's event")
    event = json.loads(message["Body"])
    assert set(event) == {"session_id", "message_id", "position", "role", "created_at"}
    assert (event["message_id"], event["role"], event["created_at"]) == (
        asked["message_id"],
        "user",
        asked["created_at"],
    )
    assert re.fullmatch(r"\d+", event["position"])
    assert message["Attributes"]["MessageGroupId"] == sid
    assert MARKER not in json.dumps(message)


def test_a_failing_event_is_retried_three_times_then_dead_lettered_and_its_session_goes_on(
    bot_stack: LocalStack,
) -> None:
    """An event the bot cannot answer (here one without a message id: the bot raises) holds its
    session's later events back for 3 receives (maxReceiveCount; each retry after BOT_RETRY_SECONDS=1
    here, the queue's 60 s deployed), then goes to the dead-letter queue; the session's next message
    is answered after that, and another session is not held back at all."""
    sqs = _sqs(bot_stack)
    held, held_token = _session(bot_stack)
    free, free_token = _session(bot_stack)
    poison = json.dumps({"session_id": held, "role": "user", "position": "0"})
    sent = sqs.send_message(
        QueueUrl=queue_url(bot_stack, "MessageEventsQueue"),
        MessageBody=poison,
        MessageGroupId=held,
        MessageDeduplicationId=f"{held}:poison",
    )["MessageId"]
    started = time.monotonic()
    _append(bot_stack, held, held_token, "after the poison")
    _append(bot_stack, free, free_token, "unrelated")

    _until(lambda: len(_history(bot_stack, free, free_token)) == 2, REPLY_WITHIN_S, "the other session")
    assert len(_history(bot_stack, held, held_token)) == 1  # held back behind the failing event
    _until(
        lambda: len(_history(bot_stack, held, held_token)) == 2, 3 * 1 + REPLY_WITHIN_S, "the held session"
    )
    assert time.monotonic() - started >= 2  # three receives, a second apart at least

    dead = sqs.receive_message(
        QueueUrl=queue_url(bot_stack, "MessageEventsDeadLetterQueue"), MaxNumberOfMessages=10
    ).get("Messages", [])
    assert [m["Body"] for m in dead] == [poison]
    failures = [line for line in bot_stack.log.read_text().splitlines() if f"failed event {sent}" in line]
    assert [re.search(r"receive (\d)", line).group(1) for line in failures] == ["1", "2", "3"]  # type: ignore[union-attr]
    assert "dead-letter queue" in failures[-1]
