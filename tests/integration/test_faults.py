"""Injected faults: throttling and 5xx that outlast the retries, a deadline that cuts retries short,
and a delete whose Lambda dies after any one of its AWS calls (one test per interruption point)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chatvault.core import clock
from chatvault.logic.sweep_orphans import sweep_orphans
from tests.helpers import (
    BUCKET,
    REAL_API_CALL,
    assert_error,
    aws_calls_to,
    call,
    context,
    create,
    declare_upload,
)

pytestmark = pytest.mark.usefixtures("aws")
TABLE = "chatvault-local-SessionsTable"


class LambdaDied(BaseException):
    """The Lambda was killed (timeout, OOM, crash) right after an AWS call returned."""


@contextmanager
def die_after(calls: int) -> Iterator[list[str]]:
    """Every AWS call counts; the one numbered `calls` completes, then the Lambda dies."""
    made: list[str] = []
    lock = threading.Lock()

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        with lock:
            if len(made) >= calls:
                raise LambdaDied(f"already dead after {made[-1]}")
        result = REAL_API_CALL(self, operation, params)
        with lock:
            made.append(operation)
            if len(made) == calls:
                raise LambdaDied(f"died after {operation}")
        return result

    with aws_calls_to(api_call):
        yield made


@contextmanager
def failing(code: str, status: int = 400) -> Iterator[None]:
    """Every AWS call fails with `code`, as after botocore has used up its retries."""

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )

    with aws_calls_to(api_call):
        yield


def _session_with_history() -> tuple[str, str]:
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    for i in range(3):
        call(
            "POST",
            f"/api/v1/sessions/{sid}/messages",
            token=token,
            body={"role": "user", "content": f"private {i}", "message_id": str(uuid.uuid4())},
        )
    s3 = boto3.client("s3")
    for i in range(2):
        s3.put_object(Bucket=BUCKET, Key=f"uploads/{sid}/{i}", Body=b"file")
    return sid, token


def _traces(sid: str) -> list[Any]:
    items = [i for i in boto3.client("dynamodb").scan(TableName=TABLE)["Items"] if i["pk"]["S"] == sid]
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"uploads/{sid}/").get("Contents", [])
    return items + objects


def _delete_calls() -> list[str]:
    sid, token = _session_with_history()
    with die_after(10_000) as made:
        assert call("DELETE", f"/api/v1/sessions/{sid}", token=token).status == 200
    return made


def test_a_delete_makes_these_calls() -> None:
    assert _delete_calls() == [
        "GetItem",
        "TransactWriteItems",  # the mark, and the key destroyed with it
        "Query",
        "BatchWriteItem",
        "ListObjectsV2",
        "DeleteObjects",
        "ListObjectsV2",  # the session's export objects (none here)
        "TransactWriteItems",
    ]


MARK = 2  # the second call marks the session: from then on nothing of it is readable
DELETE_CALLS = 8


def _assert_unreadable(sid: str, token: str) -> None:
    path = f"/api/v1/sessions/{sid}"
    assert_error(call("GET", path, token=token), 404, "session_not_found")
    assert_error(call("GET", f"{path}/messages", token=token), 404, "session_not_found")
    assert_error(call("GET", f"{path}/messages", token=token, query="order=desc"), 404, "session_not_found")
    assert_error(call("PATCH", path, token=token, body={"title": "x"}), 404, "session_not_found")
    assert_error(
        call("POST", f"{path}/messages", token=token, body={"role": "user", "content": "x"}),
        404,
        "session_not_found",
    )
    assert_error(
        declare_upload(path, "a", "text/plain", 1, token=token),
        404,
        "session_not_found",
    )


@pytest.mark.parametrize("died_after", range(1, DELETE_CALLS + 1))
def test_an_interrupted_delete_is_finished_by_a_retried_delete(died_after: int) -> None:
    sid, token = _session_with_history()
    with pytest.raises(LambdaDied), die_after(died_after):
        call("DELETE", f"/api/v1/sessions/{sid}", token=token)

    if died_after >= MARK:
        _assert_unreadable(sid, token)
    retry = call("DELETE", f"/api/v1/sessions/{sid}", token=token)

    if died_after == DELETE_CALLS:
        assert_error(retry, 404, "session_not_found")  # it had finished; the Lambda died answering
    else:
        assert retry.status == 200
        assert retry.body["erased"]["messages"] == 3
    assert _traces(sid) == []
    assert_error(call("GET", f"/api/v1/sessions/{sid}", token=token), 404, "session_not_found")


@pytest.mark.parametrize("died_after", range(MARK, DELETE_CALLS))
def test_an_interrupted_delete_is_finished_by_the_next_sweep(
    died_after: int, settings_env: pytest.MonkeyPatch
) -> None:
    sid, token = _session_with_history()
    with pytest.raises(LambdaDied), die_after(died_after):
        call("DELETE", f"/api/v1/sessions/{sid}", token=token)
    _assert_unreadable(sid, token)
    later = clock.now() + timedelta(minutes=31)
    settings_env.setattr(clock, "now", lambda: later)

    report = sweep_orphans(lambda: 10**9)

    assert report.erasures_finished == 1
    assert _traces(sid) == []


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
    ],
)
def test_storage_faults_are_503_with_retry_after_and_write_nothing(code: str) -> None:
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    before = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]

    with failing(code, 500 if "Server" in code or "Unavailable" in code else 400):
        created = call("POST", "/api/v1/sessions", body={"title": "x"})
        appended = call(
            "POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": "x"}
        )

    for reply in (created, appended):
        assert_error(reply, 503, "service_unavailable")
        assert reply.headers["Retry-After"] == "1"
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == before


def test_an_append_under_throttling_leaves_no_half_write() -> None:
    s = create().body
    sid, token = s["session_id"], s["session_token"]
    with failing("ProvisionedThroughputExceededException"):
        reply = call(
            "POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": "x"}
        )
    assert_error(reply, 503, "service_unavailable")
    assert call("GET", f"/api/v1/sessions/{sid}", token=token).body["message_count"] == 0
    assert call("GET", f"/api/v1/sessions/{sid}/messages", token=token).body["items"] == []


def test_retries_stop_at_the_lambda_deadline() -> None:
    """DynamoDB keeps answering 'throttled'; botocore would back off for many seconds, but an
    attempt that cannot finish before the deadline is not started: 503, in time."""
    attempts: list[float] = []

    def throttled(request: Any, **_: Any) -> AWSResponse:
        attempts.append(time.monotonic())
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
            b'"message":"slow down"}'
        )
        return AWSResponse(
            request.url, 400, {"x-amzn-ErrorType": "ProvisionedThroughputExceededException"}, _Raw(body)
        )

    from functions.get_session.app import lambda_handler
    from tests.helpers import ROUTES, Gateway, match_route

    route, params = match_route(ROUTES, "GET", f"/api/v1/sessions/{uuid.uuid4()}")  # type: ignore[misc]
    event = Gateway.event(
        "GET",
        f"/api/v1/sessions/{params['session_id']}",
        "",
        {"x-session-token": "t"},
        b"",
        route,
        params,
        None,
    )
    from chatvault.dal.aws import connection
    from chatvault.dal.aws.items import ChatItem

    client = connection.of(ChatItem).client
    client.meta.events.register_first("before-send.dynamodb.*", throttled, unique_id="throttle")
    try:
        ctx = context("GetSessionFunction")
        ctx.deadline = time.monotonic() + 6
        started = time.monotonic()
        result = lambda_handler(event, ctx)
    finally:
        client.meta.events.unregister("before-send.dynamodb.*", unique_id="throttle")

    assert result["statusCode"] == 503
    assert result["headers"]["Retry-After"] == "1"
    assert time.monotonic() - started < 6
    assert len(attempts) >= 2  # it did retry while there was time


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body

    def read(self, *_: Any) -> bytes:
        return self.body


def test_a_patch_whose_side_read_fails_still_answers_what_it_wrote() -> None:
    """PATCH reads the session concurrently with its write; when that read is throttled out, the
    write stands and the answer comes from a read after it, not a 503 for a PATCH that happened."""
    s = create(body={"title": "before"}).body
    failed: list[str] = []

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "BatchGetItem" and not failed:
            failed.append(operation)
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                operation,
            )
        return REAL_API_CALL(self, operation, params)

    with aws_calls_to(api_call):
        reply = call(
            "PATCH", f"/api/v1/sessions/{s['session_id']}", token=s["session_token"], body={"title": "after"}
        )
    assert failed == ["BatchGetItem"]
    assert reply.status == 200, reply.body
    assert reply.body["title"] == "after"


def test_every_request_the_service_sends_carries_the_deadline_checks(
    settings_env: pytest.MonkeyPatch,
) -> None:
    """Whichever client sends it (PynamoDB's connection of any model, the boto3 clients), every AWS
    request of every route, of the sweep and of the audit trail is checked against the deadline."""
    from chatvault.dal import audit

    sid, token = _session_with_history()
    sent: list[tuple[str, bool]] = []

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        sent.append((operation, bool(getattr(self, "_deadline_guarded", False))))
        return REAL_API_CALL(self, operation, params)

    path = f"/api/v1/sessions/{sid}"
    with aws_calls_to(api_call):
        assert call("POST", "/api/v1/sessions", body={"title": "x"}).status == 201
        assert call("GET", path, token=token).status == 200
        assert call("PATCH", path, token=token, body={"title": "y"}).status == 200
        message = {"role": "user", "content": "x", "message_id": str(uuid.uuid4())}
        assert call("POST", f"{path}/messages", token=token, body=message).status == 201
        assert call("POST", f"{path}/messages", token=token, body=message).status == 200
        assert call("GET", f"{path}/messages", token=token, query="limit=1&order=desc").status == 200
        upload = {"filename": "a", "content_type": "text/plain", "size": 1}
        assert call("POST", f"{path}/uploads", token=token, body=upload).status == 201
        audit.trail(sid)
        assert call("DELETE", path, token=token).status == 200
        later = clock.now() + timedelta(minutes=31)
        settings_env.setattr(clock, "now", lambda: later)
        sweep_orphans(lambda: 10**9)

    operations = {operation for operation, _ in sent}
    assert {"TransactWriteItems", "BatchGetItem", "Query", "BatchWriteItem", "ListObjectsV2"} <= operations
    assert [operation for operation, guarded in sent if not guarded] == []
