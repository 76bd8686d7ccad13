"""Messages through HTTP on the local stack: concurrent appends, pages, retries, bad input, erase."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.local_stack import LocalStack

pytestmark = pytest.mark.http


def _session(stack: LocalStack) -> tuple[str, dict[str, str]]:
    body = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    return f"{stack.api}/api/v1/sessions/{body['session_id']}", {"X-Session-Token": body["session_token"]}


def _pages(url: str, auth: dict[str, str], order: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order": order, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{url}/messages", headers=auth, params=params, timeout=10)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def test_sequential_appends_page_in_both_orders(stack: LocalStack) -> None:
    url, auth = _session(stack)
    for i in range(12):
        reply = requests.post(
            f"{url}/messages", headers=auth, json={"role": "user", "content": f"m{i}"}, timeout=10
        )
        assert reply.status_code == 201
    assert [m["content"] for m in _pages(url, auth, "asc", 5)] == [f"m{i}" for i in range(12)]
    assert [m["content"] for m in _pages(url, auth, "desc", 3)] == [f"m{i}" for i in reversed(range(12))]
    assert requests.get(url, headers=auth, timeout=10).json()["message_count"] == 12


def test_fifty_concurrent_appends_over_http(stack: LocalStack) -> None:
    url, auth = _session(stack)

    def send(i: int) -> requests.Response:
        return requests.post(
            f"{url}/messages",
            headers=auth,
            json={"role": "user", "content": f"c{i}", "message_id": str(uuid.uuid4())},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(send, range(50)))

    assert [r.status_code for r in replies] == [201] * 50
    asc = _pages(url, auth, "asc", 20)
    desc = _pages(url, auth, "desc", 7)
    assert sorted(m["content"] for m in asc) == sorted(f"c{i}" for i in range(50))
    assert [m["message_id"] for m in desc] == [m["message_id"] for m in reversed(asc)]
    assert requests.get(url, headers=auth, timeout=10).json()["message_count"] == 50


def test_retry_storm_with_one_message_id_over_http(stack: LocalStack) -> None:
    url, auth = _session(stack)
    body = {"role": "user", "content": "only once", "message_id": str(uuid.uuid4())}
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(
            pool.map(
                lambda _: requests.post(f"{url}/messages", headers=auth, json=body, timeout=30), range(20)
            )
        )
    assert sorted(r.status_code for r in replies) == [200] * 19 + [201]
    assert len(_pages(url, auth, "asc", 50)) == 1
    conflict = requests.post(f"{url}/messages", headers=auth, json={**body, "content": "other"}, timeout=10)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "message_id_conflict"


def test_bad_messages_over_http(stack: LocalStack) -> None:
    url, auth = _session(stack)
    cases = [
        ({"role": "user", "content": "x" * 32769}, 413, "message_too_large"),
        ({"role": "user", "content": ""}, 422, "validation_failed"),
        ({"role": "bot", "content": "x"}, 422, "validation_failed"),
        ({"role": "user", "content": "x", "metadata": {"unknown": 1}}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        reply = requests.post(f"{url}/messages", headers=auth, json=body, timeout=10)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), body
    bad_json = requests.post(f"{url}/messages", headers=auth, data="{", timeout=10)
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (400, "invalid_json")
    tampered = requests.get(f"{url}/messages", headers=auth, params={"cursor": "abc"}, timeout=10)
    assert (tampered.status_code, tampered.json()["error"]["code"]) == (400, "invalid_cursor")
    assert requests.get(url, headers=auth, timeout=10).json()["message_count"] == 0

    requests.patch(url, headers=auth, json={"status": "ended"}, timeout=10)
    ended = requests.post(f"{url}/messages", headers=auth, json={"role": "user", "content": "x"}, timeout=10)
    assert (ended.status_code, ended.json()["error"]["code"]) == (409, "session_ended")


def test_delete_leaves_no_message_item_in_any_table(stack: LocalStack) -> None:
    url, auth = _session(stack)
    for i in range(40):
        requests.post(
            f"{url}/messages",
            headers=auth,
            json={"role": "user", "content": f"private {i}", "message_id": str(uuid.uuid4())},
            timeout=10,
        )
    receipt = requests.delete(url, headers=auth, timeout=30).json()
    assert receipt["erased"]["messages"] == 40
    sid = url.rsplit("/", 1)[1]
    ddb = stack.client("dynamodb")
    for table in ddb.list_tables()["TableNames"]:
        dump = json.dumps(ddb.scan(TableName=table)["Items"], default=repr)
        assert sid not in dump
        assert "private" not in dump
