"""The reference bot back end: read a session's history, ask the model, write the assistant's reply
through the service writer (IAM). Copy this into your chatbot's back end.

Run it as a Lambda (template.yaml here: it gets the ServiceWriterPolicy and the API's URL) invoked
with `{"session_id": "..."}` by whatever learns of a new user message (your front end's back end, a
queue), or from a shell against `make dev`:

    python -m examples.echo_bot.bot --api http://127.0.0.1:3000 --session <session_id>

The model is a stand-in (`generate_reply`): it echoes. Replace it with your model call (Amazon Bedrock's
Converse API is sketched beside it)."""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

from chatvault_client import ChatVault, IamAuth, Message

# Replies are idempotent per user message: the reply to message M always has the id uuid5(M), so a
# retried invocation (Lambda retries, a duplicate event) answers it once, never twice.
REPLY_NAMESPACE = uuid.UUID("6f1c1a9e-4c6b-4d54-9a53-3f0a3c7d2b10")
HISTORY_LIMIT = 50  # the newest messages given to the model


def generate_reply(history: list[Message]) -> str:
    """The model call. A stand-in that echoes the newest user message.

    With Amazon Bedrock (boto3 `bedrock-runtime`, its `converse` operation), it would be:

        response = bedrock.converse(
            modelId=MODEL_ID,
            messages=[{"role": m.role, "content": [{"text": m.content}]}
                      for m in history if m.role in ("user", "assistant")],
            system=[{"text": SYSTEM_PROMPT}],
        )
        return response["output"]["message"]["content"][0]["text"]
    """
    last = next(m for m in reversed(history) if m.role == "user")
    return f"(stand-in bot) You said: {last.content}"


def answer(client: ChatVault, session_id: str) -> Message | None:
    """Reply to the newest message if it is the user's; None when there is nothing to answer."""
    newest_first = []
    for message in client.messages(session_id, order="desc", page_size=HISTORY_LIMIT):
        newest_first.append(message)
        if len(newest_first) == HISTORY_LIMIT:
            break
    if not newest_first or newest_first[0].role != "user":
        return None
    history = list(reversed(newest_first))
    reply = generate_reply(history)
    return client.append(
        session_id,
        "assistant",
        reply,
        message_id=str(uuid.uuid5(REPLY_NAMESPACE, newest_first[0].message_id)),
        metadata={"model": "stand-in-echo"},
    )


def client_from_environment() -> ChatVault:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return ChatVault(os.environ["CHATVAULT_API_URL"], IamAuth(region=region))


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    reply = answer(client_from_environment(), str(event["session_id"]))
    return {"replied": reply is not None, "message_id": reply.message_id if reply else None}


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
