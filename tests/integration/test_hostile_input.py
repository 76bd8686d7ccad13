"""Hostile input, through HTTP on the local stack, on every route: whatever a client sends is a 4xx with
the error body (never a 5xx), and a refused request changes nothing.

The families: nesting thousands deep, integers of thousands of digits, huge strings, bytes that are
not UTF-8, a byte-order mark, NaN and Infinity, wrong JSON types, odd path ids, repeated and excessive
query parameters, odd headers, and concurrent destructive calls (the panic button pressed many times at
once, racing appends and patches)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from chatvault.core.settings import get_settings
from tests.integration.local_stack import LocalStack, table_items

pytestmark = pytest.mark.http

DEEP = 10_000
HUGE_INT = "9" * 5000
BODY_ROUTES = (
    ("POST", "/api/v1/sessions"),
    ("PATCH", "/api/v1/sessions/{sid}"),
    ("POST", "/api/v1/sessions/{sid}/messages"),
    ("POST", "/api/v1/sessions/{sid}/uploads"),
)
VALID_BODY = {
    "PATCH": {"title": "t"},
    "POST /messages": {"role": "user", "content": "hello"},
    "POST /uploads": {"filename": "a.png", "content_type": "image/png", "size": 5},
}
ALL_ROUTES = (
    *BODY_ROUTES,
    ("GET", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions/{sid}"),
    ("GET", "/api/v1/sessions/{sid}/messages"),
    ("DELETE", "/api/v1/sessions/{sid}"),
    ("GET", "/api/v1/openapi.json"),
)


def _bodies() -> Iterator[tuple[str, bytes]]:
    """(label, raw body) of the families that attack the parser and the validators."""
    yield "deep arrays", b"[" * DEEP + b"]" * DEEP
    yield "deep objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP
    yield "deep inside a field", b'{"metadata": {"k": ' + b"[" * DEEP + b"]" * DEEP + b"}}"
    yield "deep, unclosed", b"[" * DEEP
    for field in ("size", "title", "role", "token_count"):
        yield f"huge integer in {field}", f'{{"{field}": {HUGE_INT}}}'.encode()
        yield f"huge negative integer in {field}", f'{{"{field}": -{HUGE_INT}}}'.encode()
    yield (
        "huge integer in message metadata",
        (f'{{"role": "user", "content": "x", "metadata": {{"token_count": {HUGE_INT}}}}}'.encode()),
    )
    yield "huge float", b'{"size": 1e999999, "filename": "a.png", "content_type": "image/png"}'
    yield "huge exponent", b'{"size": 1e-999999, "filename": "a.png", "content_type": "image/png"}'
    yield "integral float", b'{"size": 5.0, "filename": "a.png", "content_type": "image/png"}'
    yield "fractional size", b'{"size": 5.5, "filename": "a.png", "content_type": "image/png"}'
    for constant in ("NaN", "Infinity", "-Infinity"):
        yield (
            f"{constant}",
            f'{{"role": "user", "content": "x", "metadata": {{"token_count": {constant}}}}}'.encode(),
        )
    yield "invalid UTF-8", b'{"title": "\xff\xfe\xc3"}'
    yield "overlong UTF-8", b'{"title": "\xc0\xaf"}'
    yield "UTF-16", '{"title": "x"}'.encode("utf-16")
    yield "byte-order mark", b'\xef\xbb\xbf{"title": "x"}'
    yield "lone surrogate", b'{"title": "\\ud800", "role": "user", "content": "\\udfff"}'
    yield "NUL in text", b'{"title": "a\\u0000b", "role": "user", "content": "\\u0000"}'
    yield "null body", b"null"
    for other in (b"[]", b'"text"', b"5", b"true", b"{}", b"", b" ", b"{", b"}", b'{"a":1}{"b":2}'):
        yield f"body {other!r}", other
    yield (
        "wrong types",
        (
            b'{"title": 5, "metadata": [], "status": true, "role": 1, "content": {}, "size": "5",'
            b' "filename": [], "content_type": null, "message_id": 7, "session_id": false}'
        ),
    )
    yield (
        "nulls everywhere",
        (
            b'{"title": null, "metadata": null, "status": null, "role": null, "content": null,'
            b' "size": null, "filename": null, "content_type": null, "message_id": null}'
        ),
    )
    yield "duplicate keys", b'{"title": "a", "title": "b", "title": ' + b'"c' * 1000 + b'"}'
    yield "many keys", json.dumps({f"k{i}": i for i in range(20_000)}).encode()
    yield "many metadata pairs", json.dumps({"metadata": {f"k{i}": "v" for i in range(20_000)}}).encode()
    yield "long key", json.dumps({"metadata": {"k" * 100_000: "v"}}).encode()
    yield "long title", json.dumps({"title": "\U0001f600" * 40_000}).encode()
    yield "escaped long title", json.dumps({"title": "\U0001f600" * 40_000}, ensure_ascii=True).encode()
    yield (
        "content one over",
        json.dumps({"role": "user", "content": "a" * (get_settings().max_message_chars + 1)}).encode(),
    )
    yield "too large", b'{"title": "' + b"x" * (get_settings().max_body_bytes + 1) + b'"}'
    yield "odd session id", json.dumps({"session_id": "../../etc/passwd"}).encode()
    yield "odd message id", json.dumps({"role": "user", "content": "x", "message_id": "x" * 5000}).encode()
    yield "odd role", json.dumps({"role": "admin", "content": "x"}).encode()
    yield "odd status", json.dumps({"status": "active"}).encode()
    yield "odd content type", json.dumps({"filename": "a", "content_type": "a" * 10_000, "size": 1}).encode()
    yield (
        "odd filename",
        json.dumps({"filename": "../\u0000", "content_type": "image/png", "size": 1}).encode(),
    )


def _assert_error_body(response: requests.Response, label: str) -> None:
    assert response.status_code < 500, (label, response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), label
        error = response.json()["error"]
        assert isinstance(error["code"], str), label
        assert error["code"], label
        assert error["message"], label
        assert error["request_id"], label


@pytest.fixture
def session(stack: LocalStack) -> dict[str, Any]:
    created = requests.post(f"{stack.api}/api/v1/sessions", json={"title": "kept"}, timeout=10)
    assert created.status_code == 201
    return dict(created.json())


def _snapshot(stack: LocalStack, session: dict[str, Any]) -> dict[str, Any]:
    got = requests.get(
        f"{stack.api}/api/v1/sessions/{session['session_id']}",
        headers={"X-Session-Token": session["session_token"]},
        timeout=10,
    )
    assert got.status_code == 200, got.text
    body = dict(got.json())
    return {k: body[k] for k in ("title", "metadata", "status", "message_count", "updated_at")}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_no_body_breaks_a_route_or_changes_anything(
    stack: LocalStack, session: dict[str, Any], method: str, path: str
) -> None:
    url = stack.api + path.format(sid=session["session_id"])
    headers = {"X-Session-Token": session["session_token"], "Content-Type": "application/json"}
    before = _snapshot(stack, session)
    seen = set()
    for label, body in _bodies():
        response = requests.request(method, url, data=body, headers=headers, timeout=30)
        _assert_error_body(response, label)
        if response.status_code < 300:
            # what validation accepts is harmless here, but the families that must be refused are
            assert label in ("integral float", "body b'{}'", "nulls everywhere", "wrong types") or (
                method == "POST" and path == "/api/v1/sessions"
            ), (label, response.status_code)
        seen.add(response.status_code)
    if method != "POST" or path != "/api/v1/sessions":
        assert _snapshot(stack, session) == before
    assert 400 in seen
    assert 422 in seen
    assert 413 in seen


def test_the_parser_refuses_each_family_with_the_right_code(stack: LocalStack) -> None:
    url = f"{stack.api}/api/v1/sessions"
    expected = {
        "deep arrays": 400,
        "deep objects": 400,
        "deep inside a field": 400,
        "deep, unclosed": 400,
        "huge integer in title": 422,
        "huge integer in size": 422,  # an unknown field of create: any refusal is 422
        "NaN": 400,
        "Infinity": 400,
        "-Infinity": 400,
        "invalid UTF-8": 400,
        "overlong UTF-8": 400,
        "UTF-16": 400,
        "byte-order mark": 400,
        "lone surrogate": 400,
        "null body": 422,
        "body b'[]'": 422,
        "body b'{'": 400,
        'body b\'{"a":1}{"b":2}\'': 400,
        "too large": 413,
        "long title": 422,
        "escaped long title": 422,
        "many metadata pairs": 422,
    }
    bodies = dict(_bodies())
    for label, status in expected.items():
        response = requests.post(url, data=bodies[label], timeout=30)
        _assert_error_body(response, label)
        assert response.status_code == status, (label, response.text[:300])


@pytest.mark.parametrize(("method", "path"), [route for route in ALL_ROUTES if "{sid}" in route[1]])
def test_odd_path_ids_are_404(stack: LocalStack, session: dict[str, Any], method: str, path: str) -> None:
    headers = {"X-Session-Token": session["session_token"]}
    body = VALID_BODY.get(method) or VALID_BODY.get(f"{method} /{path.rsplit('/', 1)[-1]}")
    for odd in (
        "not-a-uuid",
        "x" * 5000,
        "%00",
        "%2e%2e",
        "..%2F..%2Fetc",
        "%F0%9F%98%80",
        "%FF%FE",
        "{" + session["session_id"] + "}",
        session["session_id"] + "0",
        session["session_id"].replace("-", ""),
        "00000000-0000-0000-0000-000000000000",
        str(uuid.uuid4()),
    ):
        response = requests.request(
            method, stack.api + path.format(sid=odd), headers=headers, json=body, timeout=10
        )
        _assert_error_body(response, odd)
        assert response.status_code == 404, (odd, response.text[:300])


@pytest.mark.parametrize(
    "query",
    [
        "limit=5&limit=6",
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=" + HUGE_INT,
        "limit=1e3",
        "limit=",
        "limit=%00",
        "order=sideways",
        "order=asc&order=desc",
        "cursor=",
        "cursor=" + "A" * 3000,
        "cursor=%FF%FE",
        "cursor=" + "a" * 100,
        "&".join(f"p{i}=1" for i in range(500)),
        "cursor=x&cursor=y",
        "%ZZ=1",
    ],
)
def test_query_parameters_odd_repeated_or_excessive(
    stack: LocalStack, session: dict[str, Any], query: str
) -> None:
    headers = {"X-Session-Token": session["session_token"]}
    response = requests.get(
        f"{stack.api}/api/v1/sessions/{session['session_id']}/messages?{query}", headers=headers, timeout=10
    )
    _assert_error_body(response, query)
    assert response.status_code in (400, 422), (query, response.text[:300])
    if query.startswith("cursor=") and query != "cursor=" and "&" not in query:  # repeated: 422
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "invalid_cursor", query


def test_odd_headers(stack: LocalStack, session: dict[str, Any]) -> None:
    url = f"{stack.api}/api/v1/sessions/{session['session_id']}"
    for token in ("x" * 7000, "-", session["session_token"] + "x", "t\u00e9st".encode().decode("latin-1")):
        response = requests.get(url, headers={"X-Session-Token": token}, timeout=10)
        _assert_error_body(response, token[:20])
        assert response.status_code in (401, 404), response.text[:300]
    response = requests.get(url, headers={"Authorization": "Bearer " + "x" * 5000}, timeout=10)
    assert response.status_code == 401


def _press_all_at_once(stack: LocalStack, sid: str, token: str) -> list[tuple[str, requests.Response]]:
    """Four DELETEs, four appends and four PATCHes on one session, all at once."""
    headers = {"X-Session-Token": token}
    url = f"{stack.api}/api/v1/sessions/{sid}"
    calls = [
        ("DELETE", url, None),
        ("POST", f"{url}/messages", {"role": "user", "content": "late"}),
        ("PATCH", url, {"title": "racing"}),
    ] * 4
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        replies = list(
            pool.map(lambda c: requests.request(c[0], c[1], json=c[2], headers=headers, timeout=60), calls)
        )
    return [(method, reply) for (method, _, _), reply in zip(calls, replies, strict=True)]


def test_the_panic_button_pressed_many_times_at_once(stack: LocalStack) -> None:
    """A double tap, a retry after a timeout, two devices: every DELETE answers 200 with a receipt or
    404, never a 5xx, also while appends and patches race it; afterwards nothing is left."""
    for _ in range(3):
        created = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
        sid, headers = created["session_id"], {"X-Session-Token": created["session_token"]}
        url = f"{stack.api}/api/v1/sessions/{sid}"
        for i in range(150):
            posted = requests.post(
                f"{url}/messages", json={"role": "user", "content": f"m{i}"}, headers=headers, timeout=30
            )
            assert posted.status_code == 201, posted.text

        replies = _press_all_at_once(stack, sid, created["session_token"])

        for _, reply in replies:
            _assert_error_body(reply, "concurrent")
        deletes = [reply for method, reply in replies if method == "DELETE"]
        assert {r.status_code for r in deletes} <= {200, 404}, [r.text for r in deletes]
        receipts = [r.json() for r in deletes if r.status_code == 200]
        assert receipts, [r.text for r in deletes]
        assert all(r["session_id"] == sid and r["erased"]["messages"] >= 150 for r in receipts)
        assert requests.get(url, headers=headers, timeout=10).status_code == 404
        assert requests.delete(url, headers=headers, timeout=10).status_code == 404
        assert [item for item in table_items(stack) if sid in json.dumps(item, default=repr)] == []


def test_the_largest_valid_message_at_the_largest_setting_is_stored(max_stack: LocalStack) -> None:
    """MaxMessageChars=65536, four-byte characters, every metadata field at its limit, sent with ASCII
    escapes (the longest spelling): 201, and read back exactly."""
    from tests.integration.test_worst_case import ASTRAL, MAX_SETTING, worst_metadata

    created = requests.post(f"{max_stack.api}/api/v1/sessions", json={}, timeout=10).json()
    url = f"{max_stack.api}/api/v1/sessions/{created['session_id']}/messages"
    headers = {"X-Session-Token": created["session_token"], "Content-Type": "application/json"}
    body = {"role": "user", "content": ASTRAL * MAX_SETTING, "metadata": worst_metadata()}
    stored = requests.post(url, data=json.dumps(body), headers=headers, timeout=60)
    assert stored.status_code == 201, stored.text[:300]
    (item,) = requests.get(url, headers=headers, timeout=60).json()["items"]
    assert item["content"] == body["content"]
    assert item["metadata"] == body["metadata"]
    one_more = {**body, "content": ASTRAL * (MAX_SETTING + 1)}
    refused = requests.post(url, data=json.dumps(one_more), headers=headers, timeout=60)
    _assert_error_body(refused, "one more")
    assert refused.status_code == 413


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_repeated_and_excessive_query_parameters_on_every_route(
    stack: LocalStack, session: dict[str, Any], method: str, path: str
) -> None:
    url = stack.api + path.format(sid=session["session_id"])
    headers = {"X-Session-Token": session["session_token"]}
    body = VALID_BODY.get(method) or VALID_BODY.get(f"{method} /{path.rsplit('/', 1)[-1]}")
    before = _snapshot(stack, session)
    for query in (
        "&".join(f"p{i}={'x' * 50}" for i in range(500)),
        "limit=5&limit=6&limit=7",
        "x=" + "9" * 5000,
        "%FF%FE=%00",
    ):
        response = requests.request(method, f"{url}?{query}", headers=headers, json=body, timeout=30)
        _assert_error_body(response, f"{method} {path} ?{query[:30]}")
        assert 400 <= response.status_code < 500, (method, path, query[:30], response.status_code)
    assert _snapshot(stack, session) == before  # a refused DELETE too: nothing erased
