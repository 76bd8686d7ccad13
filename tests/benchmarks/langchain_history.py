"""LangChain's DynamoDBChatMessageHistory on the same moto backend, measured the same way (botocore
hooks). Runs in its own venv (.tools/bench); prints one JSON object.

    python langchain_history.py <endpoint> <content chars> <sizes comma-separated>"""

from __future__ import annotations

import json
import sys
import uuid

import boto3
from langchain_community.chat_message_histories import DynamoDBChatMessageHistory
from langchain_core.messages import HumanMessage


def main() -> None:
    endpoint, chars, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
    table = f"langchain-{uuid.uuid4().hex[:8]}"
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    resource.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "SessionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    calls: list[tuple[str, int]] = []

    def count(request, event_name, **_):
        body = request.body or b""
        calls.append((event_name.rsplit(".", 1)[-1], len(body if isinstance(body, bytes) else body.encode())))

    resource.meta.client.meta.events.register("before-send.dynamodb", count)
    history = DynamoDBChatMessageHistory(
        table_name=table,
        session_id="bench",
        endpoint_url=endpoint,
        boto3_session=boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        ),
    )
    history.table.meta.client.meta.events.register("before-send.dynamodb", count)
    content = "x" * chars
    per_size: dict[str, dict[str, float]] = {}
    longest = None
    error = None
    for n in range(1, max(sizes) + 1):
        calls.clear()
        try:
            history.add_message(HumanMessage(content=content))
        except Exception as exc:  # the whole history no longer fits one item
            longest, error = n - 1, f"{type(exc).__name__}: {str(exc)[:160]}"
            break
        if n in sizes:
            per_size[str(n)] = {
                "round_trips": len(calls),
                "request_bytes": sum(b for _, b in calls),
                "operations": sorted({op for op, _ in calls}),
            }
    print(json.dumps({"per_size": per_size, "longest_history": longest, "failure": error}))


if __name__ == "__main__":
    main()
