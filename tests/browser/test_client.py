"""clients/js/chatvault.js in Chromium against the local stack: typed errors, idempotent appends that
survive a lost answer, Retry-After, paging with the async iterator, and the storage the app chooses.
Each case runs in the page (same origin as the API), importing the module the page imports."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

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


def test_an_erase_the_service_did_not_confirm_keeps_the_session(page: Any, page_stack: LocalStack) -> None:
    """Only a 2xx or a 404 (already gone) confirms an erase: a lost connection, a 429, a 503 or a 500
    leaves the session stored, so that a retry can erase it, and the error is thrown, typed."""
    out = _run(
        page,
        """
        const failures = {
          offline: () => { throw new TypeError('Failed to fetch'); },
          429: () => new Response('{"error":{"code":"rate_limited","message":"m","request_id":"r"}}',
                                  { status: 429, headers: { 'Retry-After': '60' } }),
          503: () => new Response('{"error":{"code":"service_unavailable","message":"retry the delete",'
                                  + '"request_id":"r"}}', { status: 503 }),
          500: () => new Response('', { status: 500 }),
        };
        let fail = null;
        const cut = async (url, init) => (init.method === 'DELETE' && fail ? fail() : fetch(url, init));
        sessionStorage.clear();
        const client = new ChatvaultClient({ storage: sessionStorage, retries: 0, fetch: cut });
        const created = await client.createSession();
        const kept = {};
        for (const [name, failure] of Object.entries(failures)) {
          fail = failure;
          try { await client.eraseSession(); kept[name] = 'resolved'; }
          catch (e) { kept[name] = { name: e.name, code: e.code, stored: client.stored }; }
        }
        const still = (await client.getSession()).session_id;
        fail = null;
        const receipt = await client.eraseSession();
        const afterReceipt = client.stored;
        client.remember(created.session_id, created.session_token);  // erased already: 404 confirms it
        let gone = null;
        try { await client.eraseSession(); } catch (e) { gone = { status: e.status, stored: client.stored }; }
        return { created, kept, still, receipt, afterReceipt, gone };
        """,
    )
    sid, token = out["created"]["session_id"], out["created"]["session_token"]
    stored = {"session_id": sid, "session_token": token}
    assert out["kept"] == {
        "offline": {"name": "NetworkError", "code": "network_error", "stored": stored},
        "429": {"name": "ChatvaultError", "code": "rate_limited", "stored": stored},
        "503": {"name": "ChatvaultError", "code": "service_unavailable", "stored": stored},
        "500": {"name": "ChatvaultError", "code": "http_500", "stored": stored},
    }
    assert out["still"] == sid
    assert out["receipt"]["session_id"] == sid
    assert out["afterReceipt"] is None
    assert out["gone"] == {"status": 404, "stored": None}
    gone = requests.get(
        f"{page_stack.api}/api/v1/sessions/{sid}", headers={"X-Session-Token": token}, timeout=10
    )
    assert gone.status_code == 404


def test_the_quick_exits_erase_is_recorded_until_confirmed(page: Any, page_stack: LocalStack) -> None:
    """eraseSessionOnExit forgets the session at once and keeps only what the DELETE needs until the
    service confirms it; startSession finishes it first and starts nothing while it cannot."""
    out = _run(
        page,
        """
        let offline = true;
        const posts = [];
        const cut = async (url, init) => {
          if (init.method === 'POST') posts.push(url);
          if (offline) throw new TypeError('Failed to fetch');
          return fetch(url, init);
        };
        sessionStorage.clear();
        const online = new ChatvaultClient({ storage: sessionStorage, storageKey: 'k' });
        const created = await online.createSession({ title: 'a title to forget' });
        await online.appendMessage({ role: 'user', content: 'a message to forget' });
        const options = { storage: sessionStorage, storageKey: 'k', fetch: cut, retries: 0 };
        const client = new ChatvaultClient(options);
        const confirmed = await client.eraseSessionOnExit();
        const left = { ...sessionStorage };
        const pending = client.pendingErases;
        let refused = null;
        try { await client.startSession(); } catch (e) { refused = e.name; }
        const stillPending = client.pendingErases.length;
        offline = false;
        const { session, reset } = await client.startSession();
        return { created, confirmed, stored: client.stored, left, pending, refused, stillPending,
                 posts: posts.length, fresh: session.session_id, reset, after: { ...sessionStorage } };
        """,
    )
    sid, token = out["created"]["session_id"], out["created"]["session_token"]
    assert out["confirmed"] is False
    assert out["left"] == {
        "k.erase": json.dumps([{"session_id": sid, "session_token": token}], separators=(",", ":"))
    }
    assert out["pending"] == [{"session_id": sid, "session_token": token}]
    assert out["refused"] == "NetworkError"
    assert out["stillPending"] == 1
    assert out["posts"] == 1  # the one create that worked: nothing was started while the erase was pending
    assert out["fresh"] != sid
    assert out["reset"] is False
    assert out["after"] == {
        "k": json.dumps(
            {"session_id": out["fresh"], "session_token": out["stored"]["session_token"]},
            separators=(",", ":"),
        )
    }
    gone = requests.get(
        f"{page_stack.api}/api/v1/sessions/{sid}", headers={"X-Session-Token": token}, timeout=10
    )
    assert gone.status_code == 404
