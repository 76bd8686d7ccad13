"""A person's rights over their data, through HTTP against the local stack, as a user would: files
through the presigned form moving from pending to stored (the bucket's ObjectCreated event, delivered
by the local stack), a download link that serves the file, the export of 1,200 messages compared
message by message with the history, the Markdown form, and erase-all leaving nothing of the user
in any table or the bucket. (The link form of a large session, its object sealed: test_http_sealed.py.)"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.helpers import BUCKET
from tests.integration.local_stack import LocalStack

pytestmark = pytest.mark.http


def _session(stack: LocalStack, headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, headers=headers, timeout=10).json()
    auth = headers or {"X-Session-Token": created["session_token"]}
    return f"{stack.api}/api/v1/sessions/{created['session_id']}", auth


def _form(url: str, auth: dict[str, str], filename: str, content_type: str, size: int) -> dict[str, Any]:
    """The upload form the service issues for one file."""
    body = {"filename": filename, "content_type": content_type, "size": size}
    form: dict[str, Any] = requests.post(f"{url}/uploads", headers=auth, timeout=10, json=body).json()
    return form


def _upload(url: str, auth: dict[str, str], data: bytes, content_type: str = "text/plain") -> dict[str, Any]:
    form = _form(url, auth, "notes.txt", content_type, len(data))
    sent = requests.post(
        form["url"], data=form["fields"], files={"file": ("notes.txt", data, content_type)}, timeout=10
    )
    assert sent.status_code in (200, 204), sent.text
    return dict(form)


def _until(check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _statuses(url: str, auth: dict[str, str]) -> dict[str, str]:
    items = requests.get(f"{url}/uploads", headers=auth, timeout=10).json()["items"]
    return {u["upload_id"]: u["status"] for u in items}


def test_files_move_from_pending_to_stored_and_the_link_serves_them(stack: LocalStack) -> None:
    url, auth = _session(stack)
    form = _form(url, auth, "notes.txt", "text/plain", 12)
    assert _statuses(url, auth) == {form["upload_id"]: "pending"}
    pending = requests.get(f"{url}/uploads/{form['upload_id']}", headers=auth, timeout=10)
    assert (pending.status_code, pending.json()["error"]["code"]) == (404, "upload_not_found")

    sent = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("notes.txt", b"hello, file\n", "text/plain")},
        timeout=10,
    )
    assert sent.status_code in (200, 204), sent.text

    assert _until(lambda: _statuses(url, auth) == {form["upload_id"]: "stored"})
    got = requests.get(f"{url}/uploads/{form['upload_id']}", headers=auth, timeout=10).json()
    assert got["size"] == 12
    download = requests.get(got["download_url"], timeout=10)
    assert download.status_code == 200
    assert download.content == b"hello, file\n"
    assert download.headers["content-type"] == "text/plain"
    assert "notes.txt" not in json.dumps(got)


def test_an_object_against_its_declaration_is_deleted(stack: LocalStack) -> None:
    url, auth = _session(stack)
    form = _form(url, auth, "a.png", "image/png", 100)
    # written past the form (moto does not enforce presigned-POST policies; S3 would refuse the form)
    stack.client("s3").put_object(Bucket=BUCKET, Key=form["key"], Body=b"<script>", ContentType="text/html")

    assert _until(
        lambda: "Contents" not in stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=form["key"])
    )
    assert _until(lambda: _statuses(url, auth) == {})


def _history(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = requests.get(f"{url}/messages", headers=auth, params=params, timeout=10).json()
        messages += page["items"]
        if not page["next_cursor"]:
            return messages
        params = {"limit": 100, "cursor": page["next_cursor"]}


def _append(url: str, auth: dict[str, str], contents: list[str]) -> None:
    def one(content: str) -> None:
        reply = requests.post(
            f"{url}/messages", headers=auth, json={"role": "user", "content": content}, timeout=30
        )
        assert reply.status_code == 201, reply.text

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, contents))


def test_the_export_of_1200_messages_is_the_history_and_its_markdown_reads_as_it(stack: LocalStack) -> None:
    url, auth = _session(stack)
    _append(url, auth, [f'message {n}: "quoted", ünïcode 🙂\nsecond line' for n in range(1200)])
    _upload(url, auth, b"attached")
    history = _history(url, auth)

    exported = requests.get(f"{url}/export", headers=auth, timeout=60)

    assert exported.status_code == 200, exported.text
    assert exported.headers["cache-control"] == "no-store"
    body = exported.json()
    assert body["format"] == "chatvault.export/1"
    assert body["session"] == requests.get(url, headers=auth, timeout=10).json()
    assert len(body["messages"]) == 1200
    for mine, theirs in zip(body["messages"], history, strict=True):
        assert mine == theirs
    (upload,) = body["uploads"]
    if upload["status"] == "stored":
        assert requests.get(upload["download_url"], timeout=10).content == b"attached"

    markdown = requests.get(f"{url}/export", headers=auth, params={"format": "markdown"}, timeout=60)
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    text = markdown.text
    assert text.count("\n### user · ") == 1200
    positions = [text.index(f"\n\n{m['content']}\n") for m in history]
    assert positions == sorted(positions)  # the history's order


def _bearer(sub: str) -> dict[str, str]:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": sub, "iss": "https://issuer.test", "aud": "chatvault", "exp": time.time() + 300}
    return {"Authorization": f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"}


def _everything(stack: LocalStack) -> list[str]:
    """Every item of every table (every page) and every key of the bucket, as text."""
    ddb = stack.client("dynamodb")
    found = []
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            found += [json.dumps(item, default=repr) for item in page["Items"]]
    for page in stack.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found


def test_erase_all_leaves_nothing_of_the_user_in_any_table_or_the_bucket(jwt_stack: LocalStack) -> None:
    user, other = _bearer(f"user-{uuid.uuid4()}"), _bearer(f"other-{uuid.uuid4()}")
    mine = []
    for n in range(4):
        url, auth = _session(jwt_stack, user)
        _append(url, auth, [f"m{k}" for k in range(n + 1)])
        _upload(url, auth, b"file")
        mine.append(url.rsplit("/", 1)[1])
    kept, _ = _session(jwt_stack, other)

    receipt = requests.delete(f"{jwt_stack.api}/api/v1/sessions", headers=user, timeout=60)

    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["erased"] == {"sessions": 4, "messages": 1 + 2 + 3 + 4, "uploads": 4}
    left = [text for text in _everything(jwt_stack) if any(sid in text for sid in mine)]
    assert left == []
    assert requests.get(f"{jwt_stack.api}/api/v1/sessions", headers=user, timeout=10).json()["items"] == []
    assert requests.get(kept, headers=other, timeout=10).status_code == 200
    unauthenticated = requests.delete(f"{jwt_stack.api}/api/v1/sessions", timeout=10)
    assert unauthenticated.status_code == 401
