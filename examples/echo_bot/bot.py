"""The reference bot back end: told of each user message by the service's message events, it reads the
session's history up to that message, asks the model, and writes the assistant's reply through the
service writer (IAM). Copy this into your chatbot's back end.

Run it as a Lambda (template.yaml here): it subscribes to the stack's MessageEventsQueue (a FIFO queue,
one message group per session, so a session's messages come in order, one batch at a time) and gets
Lambda's SQS event; each record's body is an event without content,
`{"session_id", "message_id", "position", "role", "created_at"}`, and its subscription's filter lets
only the users' messages through. Or run it from a shell against `make dev` to answer a session's
newest user message:

    python -m examples.echo_bot.bot --api http://127.0.0.1:3000 --session <session_id>

(`make dev BOT=echo` runs it as the events' subscriber, as deployed.)

Delivery is at least once: an event may come twice (a retry, a redelivery), so every answer is
idempotent. The reply to message M always has the id uuid5(REPLY_NAMESPACE, M): a reply already in the
history means done, and an append of it answered as a replay, or refused as a conflict (a model that
wrote something else the first time), stores nothing twice. A session erased meanwhile (404) is done:
nothing is retried, nothing is written back.

The model is a stand-in (`generate_reply`): it echoes. Replace it with your model call (Amazon Bedrock's
Converse API is sketched beside it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import uuid
from typing import Any

from chatvault_client import ChatVault, IamAuth, Message
from chatvault_client.errors import ConflictError, NotFoundError

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# Replies are idempotent per user message: the reply to message M always has the id uuid5(M), so a
# retried invocation (Lambda retries, a duplicate event) answers it once, never twice.
REPLY_NAMESPACE = uuid.UUID("6f1c1a9e-4c6b-4d54-9a53-3f0a3c7d2b10")
HISTORY_LIMIT = 50  # the messages given to the model: the one answered and those before it
# An append refused for good: the reply is stored already (with another body: a model is not
# deterministic), or the session takes no more messages. Nothing a retry would change.
DONE_CONFLICTS = ("message_id_conflict", "session_ended", "session_full")


def generate_reply(history: list[Message]) -> str:
    """The model call. A stand-in that echoes the message answered (the history's last).

    With Amazon Bedrock (boto3 `bedrock-runtime`, its `converse` operation), it would be:

        response = bedrock.converse(
            modelId=MODEL_ID,
            messages=[{"role": m.role, "content": [{"text": m.content}]}
                      for m in history if m.role in ("user", "assistant")],
            system=[{"text": SYSTEM_PROMPT}],
        )
        return response["output"]["message"]["content"][0]["text"]
    """
    return f"(stand-in bot) You said: {history[-1].content}"


def reply_id(message_id: str) -> str:
    return str(uuid.uuid5(REPLY_NAMESPACE, message_id))


def history_until(client: ChatVault, session_id: str, message_id: str) -> list[Message] | None:
    """The message `message_id` and up to HISTORY_LIMIT - 1 before it, oldest first; None when there is
    nothing to answer: the message is not in the session, or its reply is already stored (after it)."""
    answered_by = reply_id(message_id)
    newest_first: list[Message] = []
    for message in client.messages(session_id, order="desc", page_size=HISTORY_LIMIT):
        if not newest_first:
            if message.message_id == answered_by:
                return None
            if message.message_id != message_id:
                continue  # a later message: not the model's
        newest_first.append(message)
        if len(newest_first) == HISTORY_LIMIT:
            break
    return list(reversed(newest_first)) or None


def answer_message(client: ChatVault, session_id: str, message_id: str) -> Message | None:
    """Reply to the user message `message_id`: the reply, or None when there is nothing (more) to do
    (answered already, not a user message, the session erased or closed to new messages)."""
    try:
        history = history_until(client, session_id, message_id)
        if history is None or history[-1].role != "user":
            return None
        return client.append(
            session_id,
            "assistant",
            generate_reply(history),
            message_id=reply_id(message_id),
            metadata={"model": "stand-in-echo"},
        )
    except NotFoundError:
        logger.info("session gone: nothing to answer", extra={"session_id": session_id})
        return None
    except ConflictError as error:
        if error.code not in DONE_CONFLICTS:
            raise
        logger.info("not answered: %s", error.code, extra={"session_id": session_id})
        return None


def answer(client: ChatVault, session_id: str) -> Message | None:
    """Reply to the session's newest message if it is the user's; None when there is nothing to answer."""
    try:
        newest = next(iter(client.messages(session_id, order="desc", page_size=1)), None)
    except NotFoundError:
        return None
    if newest is None or newest.role != "user":
        return None
    return answer_message(client, session_id, newest.message_id)


def client_from_environment() -> ChatVault:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return ChatVault(os.environ["CHATVAULT_API_URL"], IamAuth(region=region))


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """Lambda's SQS event (ReportBatchItemFailures): each record's event is answered in order. On a FIFO
    queue a failed record and every record after it are reported (AWS's rule: the later ones may be
    the same session's, which must not be answered before it); the queue delivers them again."""
    client = client_from_environment()
    records = event["Records"]
    for index, record in enumerate(records):
        try:
            told = json.loads(record["body"])
            if told["role"] == "user":
                answer_message(client, str(told["session_id"]), str(told["message_id"]))
        except Exception:
            logger.exception("event not answered; retried", extra={"sqs_message_id": record["messageId"]})
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records[index:]]}
    return {"batchItemFailures": []}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api",
        required=True,
        help="the service's URL or its API base (make dev: http://127.0.0.1:3000 or http://127.0.0.1:3000/api/v1)",
    )
    parser.add_argument("--session", required=True, help="the session to answer")
    args = parser.parse_args()
    os.environ["CHATVAULT_API_URL"] = args.api
    reply = answer(client_from_environment(), args.session)
    print(reply.model_dump_json(exclude_none=True) if reply else "nothing to answer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
