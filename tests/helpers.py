"""Calling handlers the way API Gateway does: payload format 2.0 events from the local gateway's own
event builder, so in-process tests and the HTTP stack send the same shape."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import botocore.client

from infra.local.gateway import Gateway, match_route
from infra.local.runtime import LambdaContext
from infra.template import Stack

# The uploads bucket as the local stack and the in-process emulator name it (infra/template.py)
BUCKET = "chatvault-local-uploadsbucket"

# How botocore sends a request, before any test replaces it
REAL_API_CALL = botocore.client.BaseClient._make_api_call

ROUTES = sorted(Stack.from_template().routes(), key=lambda r: r.priority)
_TIMEOUTS = {name: fn.timeout for name, fn in Stack.from_template().functions().items()}
# LogicalId -> handler module, from each function's CodeUri (functions/<name>/)
_MODULES = {
    name: f"functions.{fn.code_dir.name}.app" for name, fn in Stack.from_template().functions().items()
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def context(name: str = "test") -> LambdaContext:
    return LambdaContext(
        name,
        512,
        f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        str(uuid.uuid4()),
        time.monotonic() + 10,
    )


def call(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    token: str | None = None,
    subject: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    source_ip: str = "198.51.100.23",
    service: bool = False,
) -> Reply:
    """Route (method, path) as the gateway would and invoke the handler in this process. `subject`: a
    JWT the gateway's authorizer verified (jwt mode); `service`: a request IAM authorized (the
    service writer's routes); a bearer token for both mode goes in `headers`."""
    found = match_route(ROUTES, method, path)
    assert found is not None, f"no route for {method} {path}"
    route, params = found
    all_headers = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["x-session-token"] = token
    data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else "")
    claims = {"sub": subject, "iss": "https://issuer.test", "aud": "chatvault"} if subject else None
    iam = {"userArn": "arn:aws:iam::123456789012:role/chatbot-backend", "accountId": "123456789012"}
    event = Gateway.event(
        method, path, query, all_headers, data.encode(), route, params, claims, iam if service else None
    )
    event["requestContext"]["http"]["sourceIp"] = source_ip
    handler = import_module(_MODULES[route.function]).lambda_handler
    invocation = context(route.function)
    invocation.deadline = time.monotonic() + _TIMEOUTS[route.function]  # the function's own Timeout
    result = handler(event, invocation)
    raw = result.get("body") or ""
    if result.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    headers = result.get("headers") or {}
    if raw and not headers.get("Content-Type", "application/json").startswith("application/json"):
        return Reply(result["statusCode"], headers, raw)  # text (an export's Markdown form)
    return Reply(result["statusCode"], headers, json.loads(raw) if raw else None)


def create(**kwargs: Any) -> Reply:
    reply = call("POST", "/api/v1/sessions", **kwargs)
    assert reply.status == 201, reply.body
    return reply


def append_messages(session: dict[str, Any], count: int) -> None:
    """`count` user messages, m0..m{count-1}, appended to a session created by `create()`."""
    for n in range(count):
        reply = call(
            "POST",
            f"/api/v1/sessions/{session['session_id']}/messages",
            token=session["session_token"],
            body={"role": "user", "content": f"m{n}"},
        )
        assert reply.status == 201, reply.body


def declare_upload(session_path: str, filename: str, content_type: str, size: int, **options: Any) -> Reply:
    """POST <session_path>/uploads in process: the form for one file (options as `call`'s)."""
    body = {"filename": filename, "content_type": content_type, "size": size}
    return call("POST", f"{session_path}/uploads", body=body, **options)


def stored_upload(session_id: str, token: str) -> str:
    """An upload of the session (in process) whose file is in the bucket and its record `stored`, as
    after the bucket's event confirmed it; its upload id."""
    from chatvault.core import clock
    from chatvault.dal import upload_records, uploads

    issued = declare_upload(f"/api/v1/sessions/{session_id}", "a.txt", "text/plain", 5, token=token)
    assert issued.status == 201, issued.body
    upload_id = str(issued.body["upload_id"])
    uploads.put(uploads.key_for(session_id, upload_id), b"hello", "text/plain")
    assert upload_records.mark_stored(session_id, upload_id, 5, clock.now())
    return upload_id


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.body["error"]["code"] == code, reply.body
    assert reply.body["error"]["message"]
    assert reply.body["error"]["request_id"]


def store(new: Any) -> Any:
    """Create a session through the dal, with the charge and audit entry the logic would add."""
    from chatvault.dal import sessions
    from chatvault.models.domain import AuditEntry, RateCharge

    charge = RateCharge(action="create_session", client="test-client", at=new.created_at, per_minute=10**6)
    entry = AuditEntry(session_id=new.session_id, event="session_created", at=new.created_at)
    return sessions.create(new, charge, entry)


def stored_session(hours: float = 720, token: str = "t") -> str:
    """A fresh anonymous session with no title or metadata, created through the dal; its id."""
    import uuid
    from datetime import timedelta

    from chatvault.core import clock
    from chatvault.logic.rules.access import hash_token
    from chatvault.models.domain import NewSession

    at = clock.now()
    new = NewSession(
        session_id=str(uuid.uuid4()),
        token_hash=hash_token(token),
        owner_id=None,
        title=None,
        metadata={},
        created_at=at,
        expires_at=at + timedelta(hours=hours),
    )
    return str(store(new).session_id)


def deletion_entry(session_id: str) -> Any:
    from chatvault.core import clock
    from chatvault.models.domain import AuditEntry

    return AuditEntry(session_id=session_id, event="session_deleted", at=clock.now())


def new_message_records() -> list[dict[str, Any]]:
    """The records of the sessions table's stream (in-process moto) that PublishMessageEventsFunction's
    filter lets through (new message items), as Lambda's event source hands them to it."""
    return stream_records("PublishMessageEventsFunction", "NewMessages")


def stream_filters(function: str, event: str) -> list[dict[str, Any]]:
    """The FilterCriteria patterns of `function`'s DynamoDB event, as the local stack reads them."""
    from infra.local import filters

    return filters.patterns(Stack.from_template().functions()[function].events[event]["Properties"])


def stream_records(function: str, event: str) -> list[dict[str, Any]]:
    """The records of the sessions table's stream (in-process moto) that the filter of `function`'s
    DynamoDB event lets through (the local stack's own filtering: infra/local/filters.py), as Lambda's
    event source hands them to it."""
    import boto3
    from botocore.config import Config

    from chatvault.core.settings import get_settings
    from infra.local import filters

    table = boto3.client("dynamodb").describe_table(TableName=get_settings().table_name)["Table"]
    # botocore would send it to the account's endpoint (<account>.streams-ddb...), which moto does not know
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    patterns = stream_filters(function, event)
    return [
        {**record, "eventSourceARN": table["LatestStreamArn"]}
        for record in streams.get_records(ShardIterator=iterator)["Records"]
        if filters.passes(patterns, record)
    ]


def partition(session_id: str, table: str | None = None, ddb: Any = None) -> list[dict[str, Any]]:
    """Every raw item of one partition, read strongly consistent: the sessions table's (as this process's
    settings name it) unless a table is given, through the in-process client unless one is given."""
    import boto3

    from chatvault.core.settings import get_settings

    items: list[dict[str, Any]] = (ddb or boto3.client("dynamodb")).query(
        TableName=table or get_settings().table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": session_id}},
        ConsistentRead=True,
    )["Items"]
    return items


def unseal_in_place(session_id: str) -> None:
    """Make a session what it was before conversations had keys (a legacy session): no key, its items
    plaintext as the service wrote them then (dal/aws/items.py), opened from their sealed values."""
    import boto3

    from chatvault.core import clock
    from chatvault.core.settings import get_settings
    from chatvault.dal import conversation_keys
    from chatvault.dal.aws.items import open_message, open_text

    key = conversation_keys.read(session_id, clock.now())
    assert key is not None
    ddb, table = boto3.client("dynamodb"), get_settings().table_name
    items = partition(session_id)

    def opened(item: dict[str, Any], field: str) -> str:
        return open_text(key, session_id, item["sk"]["S"], field, item.pop(field)["B"])

    for item in items:
        sk = item["sk"]["S"]
        if sk == "#S":
            item.pop("key_id")
            item.pop("key_expires_at")
            if "sealed_preview" in item:
                item["preview"] = {"S": opened(item, "sealed_preview")}
        if sk == "!P":
            if "sealed_title" in item:
                item["title"] = {"S": opened(item, "sealed_title")}
            if "sealed_metadata" in item:
                metadata = json.loads(opened(item, "sealed_metadata"))
                item["metadata"] = {"M": {k: {"S": v} for k, v in metadata.items()}}
        if "sealed" in item:
            content, meta = open_message(key, session_id, sk, item.pop("sealed")["B"])
            item["content"] = {"S": content}
            if meta:
                item["meta"] = {"S": json.dumps(meta, separators=(",", ":"))}
        ddb.put_item(TableName=table, Item=item)
    conversation_keys.KeyItem(session_id).delete()
    conversation_keys.forget()


def s3() -> Any:
    """The in-process emulator's S3 (the `aws` fixture's)."""
    import boto3

    return boto3.client("s3", region_name="us-east-1")


@contextmanager
def aws_calls_to(api_call: Callable[[Any, str, dict[str, Any]], Any]) -> Iterator[None]:
    """Meanwhile every AWS request any botocore client makes goes to api_call(client, operation, params)
    instead (which may hand it on to REAL_API_CALL)."""
    botocore.client.BaseClient._make_api_call = api_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = REAL_API_CALL  # type: ignore[method-assign]
