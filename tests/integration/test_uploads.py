"""Uploads through their handler under moto: the presigned POST policy, refusals, and the panic
button's reach into S3. (moto does not enforce presigned-POST policies: we assert the policy we sign.)"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from tests.helpers import BUCKET, assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")
TABLE = "chatvault-local-SessionsTable"


def _session() -> tuple[str, str]:
    s = create().body
    return s["session_id"], s["session_token"]


def _upload(sid: str, token: str | None, **body: Any) -> Any:
    payload = {"filename": "passport scan.png", "content_type": "image/png", "size": 2048, **body}
    return call("POST", f"/api/v1/sessions/{sid}/uploads", token=token, body=payload)


def _policy(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def test_upload_returns_a_presigned_post_that_fixes_key_type_and_size() -> None:
    sid, token = _session()
    before = datetime.now(UTC)

    reply = _upload(sid, token)

    assert reply.status == 201
    upload = reply.body
    assert uuid.UUID(upload["upload_id"]).version == 4
    assert upload["key"] == f"uploads/{sid}/{upload['upload_id']}"
    assert upload["max_bytes"] == 2048
    assert BUCKET in upload["url"]
    fields = upload["fields"]
    assert fields["key"] == upload["key"]
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    policy = _policy(fields)
    conditions = policy["conditions"]
    assert {"bucket": BUCKET} in conditions
    assert {"key": upload["key"]} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 2048] in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=4) < expiration - before <= timedelta(minutes=5, seconds=5)
    assert upload["expires_at"][:16] == policy["expiration"][:16]


def test_the_file_name_is_checked_but_never_stored() -> None:
    sid, token = _session()
    _upload(sid, token, filename="my-diagnosis.pdf", content_type="application/pdf")
    items = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert "my-diagnosis" not in json.dumps(items)


def test_the_session_counts_issued_uploads() -> None:
    sid, token = _session()
    for _ in range(3):
        _upload(sid, token)
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": sid}, "sk": {"S": "#S"}})[
        "Item"
    ]
    assert item["uploads_issued"] == {"N": "3"}


def test_uploads_are_refused_for_missing_foreign_ended_or_expired_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid, token = _session()
    other, other_token = _session()
    assert_error(_upload(str(uuid.uuid4()), token), 404, "session_not_found")
    assert_error(_upload(sid, other_token), 404, "session_not_found")
    assert_error(_upload(sid, None), 401, "token_required")
    call("PATCH", f"/api/v1/sessions/{other}", token=other_token, body={"status": "ended"})
    assert_error(_upload(other, other_token), 409, "session_ended")
    later = clock.now() + timedelta(hours=721)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert_error(_upload(sid, token), 404, "session_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"size": 0}, "body.size"),
        ({"size": 10 * 1024 * 1024 + 1}, "body.size"),
        ({"content_type": "png"}, "body.content_type"),
        ({"content_type": "text/html"}, "body.content_type"),
        ({"content_type": "application/x-msdownload"}, "body.content_type"),
        ({"content_type": "image/svg+xml"}, "body.content_type"),
        ({"filename": ""}, "body.filename"),
        ({"filename": "x" * 256}, "body.filename"),
        ({"filename": "../etc/passwd"}, "body.filename"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_invalid_upload_requests_are_422(body: dict[str, Any], field: str) -> None:
    sid, token = _session()
    reply = _upload(sid, token, **body)
    assert_error(reply, 422, "validation_failed")
    assert any(d["field"].startswith(field) for d in reply.body["error"]["details"]), reply.body


def test_allowed_types_are_a_setting_matched_exactly(settings_env: pytest.MonkeyPatch) -> None:
    sid, token = _session()
    assert_error(_upload(sid, token, content_type="Image/PNG"), 422, "validation_failed")

    settings_env.setenv("ALLOWED_UPLOAD_TYPES", "Text/CSV")  # the setting is read in lowercase
    get_settings.cache_clear()  # as a new deployment's cold start reads it
    assert _upload(sid, token, content_type="text/csv").status == 201
    refused = _upload(sid, token, content_type="image/png")
    assert_error(refused, 422, "validation_failed")
    assert refused.body["error"]["details"] == [
        {"field": "body.content_type", "problem": "must be one of text/csv"}
    ]
    issued = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": sid}, "sk": {"S": "#S"}})
    assert issued["Item"]["uploads_issued"] == {"N": "1"}  # the refusals counted nothing


def test_the_largest_allowed_size_is_accepted() -> None:
    sid, token = _session()
    assert _upload(sid, token, size=10 * 1024 * 1024).status == 201


def test_delete_erases_every_file_of_the_session_and_counts_them() -> None:
    sid, token = _session()
    other, _ = _session()
    s3 = boto3.client("s3")
    for i in range(1205):  # more than one DeleteObjects call
        s3.put_object(Bucket=BUCKET, Key=f"uploads/{sid}/{i:05d}", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key=f"uploads/{other}/keep", Body=b"x")

    receipt = call("DELETE", f"/api/v1/sessions/{sid}", token=token).body

    assert receipt["erased"]["uploads"] == 1205
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert left == [f"uploads/{other}/keep"]
