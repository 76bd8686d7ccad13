"""Least privilege, proven from both sides: run every function through a scenario that takes each of
its paths, record the IAM actions its AWS calls need (and on which resource), and compare with what
template.yaml grants it: nothing missing (it would fail in AWS), nothing unused, no wildcard action."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest

from chatvault.core import clock
from chatvault.dal import conversation_keys, erasure, secret, uploads
from chatvault.logic.rules.access import hash_token
from chatvault.models.domain import Principal
from infra.template import load, physical_name
from tests.helpers import REAL_API_CALL, call, context, declare_upload, new_message_records
from tests.issuer import AUDIENCE, Issuer

pytestmark = pytest.mark.usefixtures("aws")

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}
PHYSICAL = {physical_name(name, res["Type"]): name for name, res in RESOURCES.items()}
EVENTS = Path(__file__).resolve().parents[1] / "events"
# which function is running; a plain global (not a contextvar) so the functions' worker threads see it
_running = {"function": ""}
TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _table(name: str, index: str | None = None) -> str:
    logical = PHYSICAL[name]
    return json.dumps(
        {"Fn::Sub": f"${{{logical}.Arn}}/index/{index}"} if index else {"Fn::GetAtt": [logical, "Arn"]}
    )


def _objects(bucket: str, keys: list[str]) -> str:
    (folder,) = {k.split("/", 1)[0] for k in keys}  # one folder a call: uploads/ or exports/
    assert folder in ("uploads", "exports"), keys
    return json.dumps({"Fn::Sub": f"${{{PHYSICAL[bucket]}.Arn}}/{folder}/*"})


def needs(service: str, operation: str, params: dict[str, Any]) -> set[tuple[str, str]]:
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return {
                (f"dynamodb:{TRANSACT[kind]}", _table(op["TableName"]))
                for item in params["TransactItems"]
                for kind, op in item.items()
            }
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return {(f"dynamodb:{operation}", _table(t)) for t in params["RequestItems"]}
        return {(f"dynamodb:{operation}", _table(params["TableName"], params.get("IndexName")))}
    if service == "s3":
        bucket = params["Bucket"]
        if operation == "ListObjectsV2":
            assert params["Prefix"].startswith(("uploads/", "exports/"))
            return {("s3:ListBucket", json.dumps({"Fn::GetAtt": [PHYSICAL[bucket], "Arn"]}))}
        if operation == "DeleteObjects":
            return {("s3:DeleteObject", _objects(bucket, [o["Key"] for o in params["Delete"]["Objects"]]))}
        if operation in (
            "PresignPost",
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
        ):
            return {("s3:PutObject", _objects(bucket, [params["Key"]]))}
        if operation in ("PresignGet", "HeadObject"):
            return {("s3:GetObject", _objects(bucket, [params["Key"]]))}
        if operation == "DeleteObject":
            return {("s3:DeleteObject", _objects(bucket, [params["Key"]]))}
        if operation == "AbortMultipartUpload":
            return {("s3:AbortMultipartUpload", _objects(bucket, [params["Key"]]))}
    if service == "sqs" and operation == "SendMessageBatch":
        queue = params["QueueUrl"].rsplit("/", 1)[1].removesuffix(".fifo")
        return {("sqs:SendMessage", json.dumps({"Fn::GetAtt": [PHYSICAL[queue], "Arn"]}))}
    if service == "secretsmanager" and operation == "GetSecretValue":
        assert PHYSICAL[params["SecretId"]] == "FingerprintSecret"
        return {("secretsmanager:GetSecretValue", json.dumps({"Ref": "FingerprintSecret"}))}
    raise AssertionError(f"unexpected call {service}.{operation}")


def granted(function: str) -> set[tuple[str, str]]:
    result = set()
    for policy in FUNCTIONS[function]["Properties"].get("Policies", []):
        # the key's policy, with KmsKeyArn only (tests/infrastructure/test_template.py)
        if "Fn::If" in policy:
            continue
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            result |= {(a, json.dumps(r)) for a in actions for r in resources}
    return result


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[tuple[str, str]]]:
    record: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if _running["function"]:
            record[_running["function"]] |= needs(self.meta.service_model.service_name, operation, params)
        return REAL_API_CALL(self, operation, params)

    real_presign = uploads.presigned_post

    def presign(key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        from chatvault.core.settings import get_settings

        record[_running["function"]] |= needs(
            "s3", "PresignPost", {"Bucket": get_settings().uploads_bucket, "Key": key}
        )
        return real_presign(key, content_type, max_bytes, expires_in)

    real_presign_get = uploads.presigned_get

    def presign_get(key: str, expires_in: int, content_type: str | None = None) -> str:
        from chatvault.core.settings import get_settings

        record[_running["function"]] |= needs(
            "s3", "PresignGet", {"Bucket": get_settings().uploads_bucket, "Key": key}
        )
        return real_presign_get(key, expires_in, content_type)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", api_call)
    monkeypatch.setattr(uploads, "presigned_post", presign)
    monkeypatch.setattr(uploads, "presigned_get", presign_get)
    return record


def cold_start() -> None:
    """What a process reads once (the fingerprint secret) or keeps for minutes (conversation keys) is
    read again, as by a new function."""
    secret.forget()
    conversation_keys.forget()


@contextmanager
def running(name: str) -> Iterator[None]:
    """Meanwhile every AWS call is charged to function `name`, a new instance of it (a cold start)."""
    cold_start()
    _running["function"] = name
    try:
        yield
    finally:
        _running["function"] = ""


def confirm(key: str) -> dict[str, Any]:
    """ConfirmUploadFunction, for the ObjectCreated event of this key."""
    from functions.confirm_upload.app import lambda_handler

    event = json.loads(EVENTS.joinpath("confirm_upload.json").read_text())
    event["detail"]["object"]["key"] = key
    with running("ConfirmUploadFunction"):
        report: dict[str, Any] = lambda_handler(event, context("ConfirmUploadFunction"))
    return report


def as_function(name: str, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
    with running(name):
        reply = call(method, path, **kwargs)
    assert reply.status == expect, (name, reply.body)
    return reply


def _issue_upload(base: str, token: str) -> Any:
    """CreateUploadFunction's form for one small PNG."""
    body = {"filename": "a.png", "content_type": "image/png", "size": 3}
    return as_function("CreateUploadFunction", "POST", f"{base}/uploads", expect=201, token=token, body=body)


def test_every_function_is_granted_exactly_what_it_uses(
    used: dict[str, set[tuple[str, str]]], settings_env: pytest.MonkeyPatch, issuer: Issuer
) -> None:
    s = as_function("CreateSessionFunction", "POST", "/api/v1/sessions", expect=201, body={"title": "t"}).body
    sid, token = s["session_id"], s["session_token"]
    base = f"/api/v1/sessions/{sid}"
    as_function("GetSessionFunction", "GET", base, token=token)
    as_function("UpdateSessionFunction", "PATCH", base, token=token, body={"title": "u"})
    mid = str(uuid.uuid4())
    for expect in (201, 200):  # the second is an idempotent retry: it reads the stored message
        as_function(
            "AppendMessageFunction",
            "POST",
            f"{base}/messages",
            expect=expect,
            token=token,
            body={"role": "user", "content": "hi", "message_id": mid},
        )
    as_function(
        "AppendMessageFunction",
        "POST",
        f"{base}/messages",
        expect=201,
        token=token,
        body={"role": "user", "content": "x"},
    )
    # the chat: a new session with its first exchange, an exchange, its retry (the stored pair), a
    # model failure (the guard freed) and its retry (the guard taken alone, the reply looked for)
    as_function("ChatFunction", "POST", "/api/v1/chat", expect=201, body={"content": "hello"})
    chat_id, failing = str(uuid.uuid4()), str(uuid.uuid4())
    for expect, body in (
        (201, {"content": "hi", "message_id": chat_id}),
        (200, {"content": "hi", "message_id": chat_id}),
        (503, {"content": "/stand-in throttle", "message_id": failing}),
        (201, {"content": "/stand-in throttle", "message_id": failing}),
    ):
        as_function("ChatFunction", "POST", f"{base}/chat", expect=expect, token=token, body=body)
    as_function("StopReplyFunction", "POST", f"{base}/chat/stop", token=token)
    # hours later, each writer moves the conversation key's TTL with the session's (about once an hour)
    started = clock.now()
    for hours, writer in ((2, "AppendMessageFunction"), (4, "ChatFunction")):
        settings_env.setattr(clock, "now", lambda h=hours: started + timedelta(hours=h))
        path, body = (
            (f"{base}/messages", {"role": "user", "content": "later"})
            if writer == "AppendMessageFunction"
            else (f"{base}/chat", {"content": "later"})
        )
        as_function(writer, "POST", path, expect=201, token=token, body=body)
    # feedback on a reply: given, then removed
    reply_id = call("POST", f"{base}/chat", token=token, body={"content": "rate me"}).body["reply"][
        "message_id"
    ]
    feedback_path = f"{base}/messages/{reply_id}/feedback"
    as_function(
        "MessageFeedbackFunction", "PUT", feedback_path, token=token, body={"rating": "up", "comment": "c"}
    )
    as_function("MessageFeedbackFunction", "DELETE", feedback_path, token=token)
    # share links: made, listed, read without credentials (from another process: no key held), revoked
    share = as_function("ShareLinksFunction", "POST", f"{base}/shares", expect=201, token=token).body
    as_function("ShareLinksFunction", "GET", f"{base}/shares", token=token)
    as_function("GetSharedFunction", "GET", f"/api/v1/shared/{share['share_id']}")
    as_function("ShareLinksFunction", "DELETE", f"{base}/shares/{share['share_id']}", token=token)
    # the streamed chat (ChatStreamFunction: on AWS the web adapter passes it each request)
    from chatvault.http.stream import PlainRequest
    from functions.chat_stream.app import respond

    def streamed(path: str, content: str, message_id: str | None = None, auth: str | None = token) -> bytes:
        body = {"content": content, **({"message_id": message_id} if message_id else {})}
        headers = {"accept": "text/event-stream", **({"x-session-token": auth} if auth else {})}
        with running("ChatStreamFunction"):
            status, _, chunks = respond(
                PlainRequest("POST", path, headers=headers, body=json.dumps(body).encode())
            )
            answer = b"".join(chunks)
        assert status == 200, answer
        return answer

    stream_id, stream_failing = str(uuid.uuid4()), str(uuid.uuid4())
    assert b"event: session" in streamed("/api/v1/chat", "hello", auth=None)
    for _ in range(2):  # an exchange, then its replay
        assert b"event: reply" in streamed(f"{base}/chat", "hi", stream_id)
    assert b"event: error" in streamed(f"{base}/chat", "/stand-in throttle", stream_failing)
    assert b"event: reply" in streamed(f"{base}/chat", "/stand-in throttle", stream_failing)
    settings_env.setattr(clock, "now", lambda: started + timedelta(hours=6))
    assert b"event: reply" in streamed(f"{base}/chat", "later")  # moves the key's TTL
    first = as_function("ListMessagesFunction", "GET", f"{base}/messages", token=token, query="limit=1").body
    as_function(
        "ListMessagesFunction", "GET", f"{base}/messages", token=token, query=f"cursor={first['next_cursor']}"
    )
    as_function("ListMessagesFunction", "GET", f"{base}/messages", token=token, query="order=desc")
    # the bot's events: the stream's new messages so far, read and sent to the queue
    from functions.publish_message_events.app import lambda_handler as publish

    records = new_message_records()  # what Lambda's event source reads (its own permissions, SAM's)
    with running("PublishMessageEventsFunction"):
        published = publish({"Records": records}, context("PublishMessageEventsFunction"))
    assert published == {"batchItemFailures": []}
    _issue_upload(base, token)
    boto3.client("s3").put_object(Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{sid}/f", Body=b"x")
    # the read side: an upload confirmed by its object's event, one refused (and deleted), the export
    uploaded = [_issue_upload(base, token).body["key"] for _ in range(2)]
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket="chatvault-local-uploadsbucket", Key=uploaded[0], Body=b"abc", ContentType="image/png"
    )
    s3.put_object(
        Bucket="chatvault-local-uploadsbucket", Key=uploaded[1], Body=b"abc", ContentType="text/html"
    )
    assert confirm(uploaded[0])["stored"] == 1
    assert confirm(uploaded[1])["refused"] == 1
    # the TTL's removal of the first upload's record (as DynamoDB Streams writes it): its file deleted
    from functions.remove_expired_files.app import lambda_handler as remove_files

    ttl_removal = json.loads(EVENTS.joinpath("remove_expired_files.json").read_text())
    ttl_removal["Records"][0]["dynamodb"]["Keys"] = {
        "pk": {"S": sid},
        "sk": {"S": "U#" + uploaded[0].rsplit("/", 1)[1]},
    }
    with running("RemoveExpiredFilesFunction"):
        assert remove_files(ttl_removal, context("RemoveExpiredFilesFunction")) == {"removed": 1}
    as_function("ListUploadsFunction", "GET", f"{base}/uploads", token=token)
    as_function("GetUploadFunction", "GET", f"{base}/uploads/{uploaded[0].rsplit('/', 1)[1]}", token=token)
    as_function("ExportSessionFunction", "GET", f"{base}/export", token=token)
    settings_env.setenv("EXPORT_INLINE_BYTES", "1")  # the link form: an export object
    from chatvault.core.settings import get_settings

    get_settings.cache_clear()
    as_function("ExportSessionFunction", "GET", f"{base}/export", token=token)
    # an export written in parts, and one that fails mid-way (its parts aborted)
    import moto.s3.models

    from chatvault.core import seal
    from chatvault.core.errors import StorageUnavailableError
    from chatvault.dal import exports

    def fail(_: exports.ExportObject) -> None:
        raise StorageUnavailableError()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exports, "PART_BYTES", 64)
        patch.setattr(seal, "CHUNK_BYTES", 16)  # sealed chunks small enough to fill parts
        patch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
        as_function("ExportSessionFunction", "GET", f"{base}/export", token=token)
        patch.setattr(exports.ExportObject, "close", fail)
        as_function("ExportSessionFunction", "GET", f"{base}/export", expect=503, token=token)
    settings_env.delenv("EXPORT_INLINE_BYTES")
    get_settings.cache_clear()
    as_function("UpdateSessionFunction", "PATCH", base, token=token, body={"status": "ended"})
    # refused writes read the session to say why
    as_function("UpdateSessionFunction", "PATCH", base, expect=409, token=token, body={"title": "refused"})
    as_function(
        "CreateUploadFunction",
        "POST",
        f"{base}/uploads",
        expect=409,
        token=token,
        body={"filename": "a.png", "content_type": "image/png", "size": 3},
    )
    as_function("DeleteSessionFunction", "DELETE", base, token=token)
    as_function("RouteFallbackFunction", "GET", "/api/v1/nothing", expect=404)

    # a shorter retention, applied at once: an older message and upload deleted (its file too), a
    # newer message's TTL moved
    short = as_function("CreateSessionFunction", "POST", "/api/v1/sessions", expect=201, body={}).body
    short_base = f"/api/v1/sessions/{short['session_id']}"
    says = {"role": "user", "content": "soon forgotten"}
    call("POST", f"{short_base}/messages", token=short["session_token"], body=says)
    file_key = declare_upload(short_base, "a.png", "image/png", 3, token=short["session_token"]).body["key"]
    boto3.client("s3").put_object(Bucket="chatvault-local-uploadsbucket", Key=file_key, Body=b"abc")
    written = clock.now()
    settings_env.setattr(clock, "now", lambda: written + timedelta(hours=2))
    call("POST", f"{short_base}/messages", token=short["session_token"], body=says)
    settings_env.setattr(clock, "now", lambda: written + timedelta(hours=2, minutes=30))
    as_function(
        "UpdateSessionFunction",
        "PATCH",
        short_base,
        token=short["session_token"],
        body={"retention_hours": 1},
    )

    # the sweep: an orphan folder, and a delete whose Lambda died after marking the session
    other = as_function("CreateSessionFunction", "POST", "/api/v1/sessions", expect=201, body={}).body
    call(
        "POST",
        f"/api/v1/sessions/{other['session_id']}/messages",
        token=other["session_token"],
        body={"role": "user", "content": "left behind"},
    )
    at = clock.now()
    erasure.mark_erasing(
        other["session_id"], Principal(token_hash=hash_token(other["session_token"])), at, at
    )
    boto3.client("s3").put_object(
        Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{uuid.uuid4()}/x", Body=b"x"
    )
    boto3.client("s3").put_object(
        Bucket="chatvault-local-uploadsbucket", Key=f"exports/{uuid.uuid4()}/old.json", Body=b"{}"
    )
    later = clock.now() + timedelta(hours=1)
    settings_env.setattr(clock, "now", lambda: later)
    from functions.sweep_orphans.app import lambda_handler as sweep

    sweep_context = context("SweepOrphansFunction")
    sweep_context.deadline += 290  # the sweep's timeout is 300 s
    with running("SweepOrphansFunction"):
        report = sweep(json.loads(EVENTS.joinpath("sweep_orphans.json").read_text()), sweep_context)
    assert report["erasures_finished"] == 1
    assert report["prefixes_deleted"] >= 1
    assert report["exports_deleted"] == 1

    settings_env.setenv("AUTH_MODE", "jwt")
    get_settings.cache_clear()
    as_function(
        "CreateSessionFunction", "POST", "/api/v1/sessions", 201, body={"title": "mine"}, subject="alice"
    )
    listed = as_function("ListSessionsFunction", "GET", "/api/v1/sessions", subject="alice")
    assert [s["title"] for s in listed.body["items"]] == ["mine"]  # the profiles are read with the page
    mine = listed.body["items"][0]["session_id"]
    call("POST", f"/api/v1/sessions/{mine}/messages", subject="alice", body={"role": "user", "content": "x"})
    for folder in ("uploads", "exports"):
        s3.put_object(Bucket="chatvault-local-uploadsbucket", Key=f"{folder}/{mine}/x", Body=b"x")
    erased = as_function("EraseAllSessionsFunction", "DELETE", "/api/v1/sessions", subject="alice")
    assert erased.body["erased"]["sessions"] == 1

    # both mode: a claim, and a refused claim (which reads the session to say why)
    from chatvault.dal import jwks

    settings_env.setenv("AUTH_MODE", "both")
    settings_env.setenv("JWT_ISSUER", issuer.url)
    settings_env.setenv("JWT_AUDIENCE", AUDIENCE)
    get_settings.cache_clear()
    jwks.forget()
    anonymous = call("POST", "/api/v1/sessions", body={}).body
    claim = f"/api/v1/sessions/{anonymous['session_id']}/claim"
    for expect in (200, 200):
        as_function(
            "ClaimSessionFunction",
            "POST",
            claim,
            expect,
            token=anonymous["session_token"],
            headers=issuer.bearer("carol"),
        )

    for function in FUNCTIONS:
        assert used[function] - granted(function) == set(), f"{function} lacks permissions"
        assert granted(function) - used[function] == set(), f"{function} is granted more than it uses"
