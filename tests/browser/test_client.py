"""clients/js/chatvault.js in Chromium against the local stack: typed errors, idempotent appends that
survive a lost answer, Retry-After, paging with the async iterator, and the storage the app chooses.
Each case runs in the page (same origin as the API), importing the module the page imports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.local_stack import LocalStack

pytestmark = pytest.mark.http

IMPORT = (
    "const { ChatvaultClient, ChatvaultError, NetworkError, memoryStorage } = await import('/chatvault.js');"
)


def _run(page: Any, body: str, arg: Any = None) -> Any:
    return page.evaluate(f"async (arg) => {{ {IMPORT} {body} }}", arg)


def test_errors_carry_the_services_code(page: Any) -> None:
    out = _run(
        page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        client.remember(crypto.randomUUID(), 'a token of no session');
        try { await client.getSession(); return 'no error'; }
        catch (e) { return { typed: e instanceof ChatvaultError, name: e.name, status: e.status, code: e.code,
                             requestId: e.requestId, message: e.message }; }
        """,
    )
    assert out["typed"] is True
    assert out["name"] == "ChatvaultError"
    assert out["status"] == 404
    assert out["code"] == "session_not_found"
    assert out["requestId"]
    assert out["message"]


def test_an_append_whose_answer_was_lost_is_resent_with_its_message_id_and_stored_once(page: Any) -> None:
    out = _run(
        page,
        """
        const sent = [];
        let lose = true;
        const flaky = async (url, init) => {
          const append = init.method === 'POST' && url.endsWith('/messages');
          if (append) sent.push(JSON.parse(init.body).message_id);
          const response = await fetch(url, init);  // the service gets it and stores it ...
          if (append && lose) {  // ... and its answer is lost on the way back
            lose = false;
            throw new TypeError('Failed to fetch');
          }
          return response;
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: flaky });
        await client.createSession();
        const message = await client.appendMessage({ role: 'user', content: 'once only' });
        const page = await client.listMessages();
        return { sent, stored: message.message_id, count: page.items.length };
        """,
    )
    assert len(out["sent"]) == 2
    assert out["sent"][0] == out["sent"][1] == out["stored"]
    assert out["count"] == 1


def test_429_and_503_are_retried_after_retry_after(page: Any) -> None:
    out = _run(
        page,
        """
        const statuses = [429, 503];
        const seen = [];
        const limited = async (url, init) => {
          if (statuses.length) {
            const status = statuses.shift();
            seen.push(status);
            const error = { error: { code: 'rate_limited', message: 'slow down', request_id: 'r' } };
            const headers = { 'Retry-After': '1', 'Content-Type': 'application/json' };
            return new Response(JSON.stringify(error), { status, headers });
          }
          return fetch(url, init);
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: limited });
        const started = performance.now();
        const session = await client.createSession({ title: 'after the limit' });
        const waited = performance.now() - started;
        const body = '{"error":{"code":"rate_limited","message":"m","request_id":"r"}}';
        const long = async () => new Response(body, { status: 429, headers: { 'Retry-After': '60' } });
        const options = { storage: memoryStorage(), maxRetryDelaySeconds: 5, fetch: long };
        const impatient = new ChatvaultClient(options);
        let refused = null;
        try {
          await impatient.createSession();
        } catch (e) {
          refused = { code: e.code, retryAfter: e.retryAfter };
        }
        return { seen, waited, title: session.title, refused };
        """,
    )
    assert out["seen"] == [429, 503]
    assert out["waited"] >= 2000
    assert out["title"] == "after the limit"
    assert out["refused"] == {"code": "rate_limited", "retryAfter": 60}


def test_history_pages_through_the_async_iterator(page: Any) -> None:
    out = _run(
        page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        await client.createSession();
        for (let i = 0; i < 7; i++) await client.appendMessage({ role: 'user', content: `m${i}` });
        const seen = [];
        const requests = [];
        const count = (u, i) => (requests.push(u), fetch(u, i));
        const counting = new ChatvaultClient({ storage: client.storage, fetch: count });
        for await (const m of counting.messages({ limit: 3 })) seen.push(m.content);
        const pages = requests.length;
        const newest = [];
        for await (const m of counting.messages({ order: 'desc', limit: 5 })) newest.push(m.content);
        return { seen, pages, newest };
        """,
    )
    assert out["seen"] == [f"m{i}" for i in range(7)]
    assert out["pages"] == 3
    assert out["newest"] == [f"m{i}" for i in reversed(range(7))]


def test_the_app_chooses_the_storage(page: Any, page_stack: LocalStack) -> None:
    out = _run(
        page,
        """
        localStorage.clear(); sessionStorage.clear();
        const kept = new ChatvaultClient({ storage: sessionStorage, storageKey: 'helpline' });
        const created = await kept.createSession();
        const again = new ChatvaultClient({ storage: sessionStorage, storageKey: 'helpline' });
        const restored = await again.restoreSession();
        const receipt = await again.eraseSession();
        return { local: localStorage.length, stored: JSON.parse(sessionStorage.getItem('helpline') ?? 'null'),
                 sid: created.session_id, restored: restored.session_id, receipt };
        """,
    )
    assert out["local"] == 0
    assert out["restored"] == out["sid"]
    assert out["stored"] is None  # erased: forgotten locally too
    assert out["receipt"]["session_id"] == out["sid"]
    assert json.dumps(out["receipt"]["erased"]) == '{"messages": 0, "uploads": 0}'
