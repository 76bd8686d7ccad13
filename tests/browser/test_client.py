"""clients/js/chatvault.js in Chromium against the local stack: typed errors, idempotent appends that
survive a lost answer, Retry-After, paging with the async iterator, and the storage the app chooses.
Each case runs in the page (same origin as the API), importing the module the page imports."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import requests

from tests.helpers import BUCKET
from tests.integration.local_stack import PAST_INLINE_MESSAGES, LocalStack, fill_past_inline

pytestmark = pytest.mark.http

IMPORT = (
    "const { ChatvaultClient, ChatvaultError, NetworkError, memoryStorage } = await import('/chatvault.js');"
)


# A fetch for the client that loses the answer to the first POST to a path ending in `suffix`: the
# service gets the request (and, with `answered`, has answered it) but the answer never comes back.
# `sent` collects the message_id of every such POST.
LOSE_FIRST_ANSWER = """
const loseFirstAnswer = (suffix, answered) => {
  const sent = [];
  let lose = true;
  const fetchLosing = async (url, init) => {
    const hit = init.method === 'POST' && url.endsWith(suffix);
    if (hit) sent.push(JSON.parse(init.body).message_id);
    if (hit && lose) {
      lose = false;
      const reached = fetch(url, init);
      if (answered) await reached;
      throw new TypeError('Failed to fetch');
    }
    return fetch(url, init);
  };
  return { sent, fetch: fetchLosing };
};
"""


# Reads a ChatStream: each delta with when it came, and what the stream held meanwhile and at its end.
READ = """
const read = async (stream) => {
  const deltas = [];
  const started = performance.now();
  let messageFirst = null;
  for await (const text of stream) {
    if (messageFirst === null) messageFirst = stream.message !== null;
    deltas.push({ text, at: performance.now() - started });
  }
  return { deltas, messageFirst, streamed: stream.streamed, text: stream.text, session: stream.session,
           message: stream.message, reply: stream.reply, messageId: stream.messageId };
};
const failure = (e) => ({ name: e.name, status: e.status, code: e.code, messageId: e.messageId,
                          retryAfter: e.retryAfter, session: e.session });
"""


def _run(page: Any, body: str, arg: Any = None) -> Any:
    """Runs body in the page, with the module imported and the helpers above (declarations only) in scope."""
    return page.evaluate(f"async (arg) => {{ {IMPORT} {LOSE_FIRST_ANSWER} {READ} {body} }}", arg)


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
        // the service stores the message, and its answer is lost on the way back
        const { sent, fetch: lossy } = loseFirstAnswer('/messages', true);
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: lossy });
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


def test_messages_after_reads_back_to_the_newest_known_message_by_cursor(page: Any) -> None:
    """What a polling page appends: the messages after the newest known one, oldest first, in one
    request while few are new, page after page (newest first, by cursor) while many are."""
    out = _run(
        page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        await client.createSession();
        const ids = [];
        for (let i = 0; i < 8; i++) {
          ids.push((await client.appendMessage({ role: 'user', content: `m${i}` })).message_id);
        }
        const requests = [];
        const count = (u, i) => (requests.push(u), fetch(u, i));
        const counting = new ChatvaultClient({ storage: client.storage, fetch: count });
        const asked = async (known, options) => {
          requests.length = 0;
          const got = (await counting.messagesAfter(known, options)).map((m) => m.content);
          const cursors = requests.filter((u) => u.includes('cursor=')).length;
          return { got, requests: requests.length, cursors };
        };
        return {
          few: await asked(new Set(ids.slice(0, 6)), { limit: 3 }),
          many: await asked([ids[1]], { limit: 3 }),
          none: await asked([], { limit: 5 }),
          all: await asked(ids, { limit: 3 }),
        };
        """,
    )
    assert out["few"] == {"got": ["m6", "m7"], "requests": 1, "cursors": 0}
    assert out["many"] == {"got": [f"m{i}" for i in range(2, 8)], "requests": 3, "cursors": 2}
    assert out["none"] == {"got": [f"m{i}" for i in range(8)], "requests": 2, "cursors": 1}
    assert out["all"] == {"got": [], "requests": 1, "cursors": 0}


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


# ---- the chat ----

# A fetch that records each chat request (its route, message_id and the status it got) before
# answering as the service did: the cases below read what the client sent, and in which order.
RECORDING = """
const sent = [];
const recording = async (url, init) => {
  const chat = init.method === 'POST' && /\\/chat$/.test(url);
  const response = await fetch(url, init);
  if (chat) {
    const route = url.includes('/sessions/') ? 'session' : 'start';
    sent.push({ route, message_id: JSON.parse(init.body).message_id, status: response.status });
  }
  return response;
};
"""
# ... and a client that uses it, with a new session
RECORDED_SESSION = (
    RECORDING
    + """
const client = new ChatvaultClient({ storage: memoryStorage(), fetch: recording });
const created = await client.createSession();
"""
)
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def _stored_messages(stack: LocalStack, sid: str, token: str) -> list[dict[str, Any]]:
    listed = requests.get(
        f"{stack.api}/api/v1/sessions/{sid}/messages", headers={"X-Session-Token": token}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def test_a_chat_returns_both_messages_and_both_are_stored(page: Any, page_stack: LocalStack) -> None:
    out = _run(
        page,
        RECORDED_SESSION
        + """
        const first = await client.chat(null, 'Hello, my name is Ada');
        const second = await client.chat(created.session_id, 'What did I say?');
        const stored = (await client.listMessages()).items;
        return { created, first, second, stored, sent };
        """,
    )
    first, second = out["first"], out["second"]
    assert [first["message"]["role"], first["reply"]["role"]] == ["user", "assistant"]
    assert first["message"]["content"] == "Hello, my name is Ada"
    assert first["reply"]["content"] == 'You said: "Hello, my name is Ada".'
    assert second["reply"]["content"] == (
        'You said: "What did I say?". Earlier you said: "Hello, my name is Ada"'
    )
    pairs = [first["message"], first["reply"], second["message"], second["reply"]]
    assert out["stored"] == pairs
    # the client chose each message_id (a UUIDv4), and the service kept it
    assert [s["route"] for s in out["sent"]] == ["session", "session"]
    assert [s["message_id"] for s in out["sent"]] == [
        first["message"]["message_id"],
        second["message"]["message_id"],
    ]
    assert all(re.match(UUID4, s["message_id"]) for s in out["sent"])
    created = out["created"]
    assert _stored_messages(page_stack, created["session_id"], created["session_token"]) == pairs


def test_feedback_on_a_reply_is_set_replaced_and_cleared(page: Any, page_stack: LocalStack) -> None:
    out = _run(
        page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        await client.createSession();
        const pair = await client.chat(null, 'Hello');
        const up = await client.setFeedback(pair.reply.message_id, { rating: 'up', comment: 'Kind' });
        const down = await client.setFeedback(pair.reply.message_id, { rating: 'down' });
        const listed = (await client.listMessages()).items;
        const cleared = await client.clearFeedback(pair.reply.message_id);
        let refused = null;
        try { await client.setFeedback(pair.message.message_id, { rating: 'up' }); }
        catch (error) { refused = { status: error.status, code: error.code }; }
        return { up: up.feedback, down: down.feedback, listed, cleared: cleared.feedback, refused };
        """,
    )
    assert (out["up"]["rating"], out["up"]["comment"]) == ("up", "Kind")
    assert (out["down"]["rating"], out["down"]["comment"]) == ("down", None)
    assert out["listed"][1]["feedback"] == out["down"]
    assert out["cleared"] is None
    assert out["refused"] == {"status": 422, "code": "validation_failed"}


@pytest.mark.parametrize(
    ("command", "status", "code"),
    [
        ("/stand-in throttle", 503, "model_unavailable"),
        ("/stand-in timeout", 504, "model_timeout"),
        ("/stand-in error", 502, "model_unavailable"),
    ],
)
def test_a_chat_the_model_failed_is_retried_with_its_message_id_and_stored_once(
    page: Any, page_stack: LocalStack, command: str, status: int, code: str
) -> None:
    """The stand-in fails the first attempt at the reply: the user message is stored, and the client's
    retry (after Retry-After, for the 503) with the same message_id stores the reply, once."""
    out = _run(
        page,
        RECORDED_SESSION
        + """
        const started = performance.now();
        const pair = await client.chat(null, arg);
        const waited = performance.now() - started;
        let refused = null;  // and a caller that retries itself sees the failure, typed, with the message_id
        const caller = new ChatvaultClient({ storage: client.storage, retries: 0 });
        try { await caller.chat(null, arg, { messageId: crypto.randomUUID() }); }
        catch (e) { refused = { name: e.name, status: e.status, code: e.code, messageId: e.messageId }; }
        const again = await caller.chat(null, arg, { messageId: refused.messageId });
        return { created, pair, waited, refused, again, sent };
        """,
        command,
    )
    pair, sent = out["pair"], out["sent"]
    mid = pair["message"]["message_id"]
    assert [(s["message_id"], s["status"]) for s in sent] == [(mid, status), (mid, 201)]
    if status == 503:
        assert out["waited"] >= 5000  # the stand-in's Retry-After, as Bedrock's throttle maps to
    assert pair["reply"]["role"] == "assistant"
    assert pair["reply"]["content"].startswith(f'You said: "{command}".')
    assert out["refused"]["name"] == "ChatvaultError"
    assert out["refused"]["status"] == status
    assert out["refused"]["code"] == code
    assert out["again"]["message"]["message_id"] == out["refused"]["messageId"]
    created = out["created"]
    stored = _stored_messages(page_stack, created["session_id"], created["session_token"])
    assert stored == [pair["message"], pair["reply"], out["again"]["message"], out["again"]["reply"]]


def test_a_chat_whose_answer_was_lost_is_resent_and_stored_once(page: Any, page_stack: LocalStack) -> None:
    """The connection drops while the reply is being made: the retry with the same message_id gets
    409 reply_in_progress (retried) or the stored pair, never a second message or reply."""
    out = _run(
        page,
        """
        // the service gets it and makes the reply; its answer never comes back
        const { sent, fetch: lossy } = loseFirstAnswer('/chat', false);
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: lossy });
        await client.createSession();
        const pair = await client.chat(null, 'once only');
        const stored = (await client.listMessages()).items;
        return { sent, pair, stored };
        """,
    )
    mid = out["pair"]["message"]["message_id"]
    assert len(out["sent"]) >= 2
    assert set(out["sent"]) == {mid}
    assert out["stored"] == [out["pair"]["message"], out["pair"]["reply"]]


def test_a_chat_retries_only_what_a_retry_can_finish(page: Any) -> None:
    """409 reply_in_progress, 502, 503 and 504 are retried with the same message_id (after Retry-After);
    409 session_full and a 500 are not."""
    out = _run(
        page,
        """
        const answers = [];
        const sent = [];
        const scripted = async (url, init) => {
          if (init.method === 'POST' && url.endsWith('/chat')) {
            sent.push(JSON.parse(init.body).message_id);
            if (answers.length) {
              const [status, code] = answers.shift();
              const body = JSON.stringify({ error: { code, message: 'm', request_id: 'r' } });
              return new Response(body, { status, headers: { 'Retry-After': '0' } });
            }
          }
          return fetch(url, init);
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: scripted, retries: 4 });
        await client.createSession();
        answers.push([409, 'reply_in_progress'], [502, 'model_unavailable'], [503, 'model_unavailable'],
                     [504, 'model_timeout']);
        const pair = await client.chat(null, 'after four failures');
        const retried = sent.splice(0);
        const refused = [];
        for (const answer of [[409, 'session_full'], [500, 'http_500']]) {
          answers.push(answer);
          try { await client.chat(null, 'refused'); }
          catch (e) { refused.push({ code: e.code, attempts: sent.splice(0).length }); }
        }
        return { pair, retried, refused, stored: (await client.listMessages()).items };
        """,
    )
    mid = out["pair"]["message"]["message_id"]
    assert out["retried"] == [mid] * 5
    assert out["stored"] == [out["pair"]["message"], out["pair"]["reply"]]
    assert out["refused"] == [{"code": "session_full", "attempts": 1}, {"code": "http_500", "attempts": 1}]


def test_a_chat_is_not_retried_on_another_4xx(page: Any) -> None:
    out = _run(
        page,
        RECORDED_SESSION
        + """
        const refused = [];
        for (const content of ['', 'x'.repeat(40000)]) {
          try { await client.chat(null, content); }
          catch (e) { refused.push({ status: e.status, code: e.code, messageId: e.messageId }); }
        }
        return { refused, sent, count: (await client.listMessages()).items.length };
        """,
    )
    assert [(r["status"], r["code"]) for r in out["refused"]] == [
        (422, "validation_failed"),
        (413, "message_too_large"),
    ]
    assert [s["status"] for s in out["sent"]] == [422, 413]  # one request each
    assert [r["messageId"] for r in out["refused"]] == [s["message_id"] for s in out["sent"]]
    assert out["count"] == 0


def test_start_chat_creates_a_session_and_keeps_its_token(page: Any, page_stack: LocalStack) -> None:
    out = _run(
        page,
        RECORDING
        + """
        sessionStorage.clear();
        const client = new ChatvaultClient({ storage: sessionStorage, storageKey: 'k', fetch: recording });
        const started = await client.startChat('Hello, my name is Ada');
        const again = new ChatvaultClient({ storage: sessionStorage, storageKey: 'k' });  // as after a reload
        const restored = await again.restoreSession();
        const next = await again.chat(null, 'What did I say?');
        return { started, stored: JSON.parse(sessionStorage.getItem('k')), restored, next, sent };
        """,
    )
    started = out["started"]
    session = started["session"]
    assert session["session_token"]
    assert out["stored"] == {"session_id": session["session_id"], "session_token": session["session_token"]}
    assert out["restored"]["session_id"] == session["session_id"]
    assert started["message"]["session_id"] == started["reply"]["session_id"] == session["session_id"]
    assert started["reply"]["content"] == 'You said: "Hello, my name is Ada".'
    assert out["next"]["reply"]["content"].endswith('Earlier you said: "Hello, my name is Ada"')
    assert [(s["route"], s["status"]) for s in out["sent"]] == [("start", 201)]
    # the token works for anyone holding it, and the session holds the two exchanges
    stored = _stored_messages(page_stack, session["session_id"], session["session_token"])
    assert stored == [started["message"], started["reply"], out["next"]["message"], out["next"]["reply"]]


def test_start_chat_adopts_the_session_a_failure_carries_and_retries_on_its_route(
    page: Any, page_stack: LocalStack
) -> None:
    """POST /chat created the session, then the model failed: the answer carries the session (and its
    token, this once). The client keeps it and finishes the chat on the session's route, same message_id."""
    out = _run(
        page,
        RECORDING
        + """
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: recording });
        const started = await client.startChat('/stand-in error');
        // the retry on the session's route does not get through either: the failure carries the session
        const cut = async (url, init) => {
          if (url.includes('/sessions/') && url.endsWith('/chat')) throw new TypeError('Failed to fetch');
          return fetch(url, init);
        };
        const caller = new ChatvaultClient({ storage: memoryStorage(), retries: 0, fetch: cut });
        let refused = null;
        try { await caller.startChat('/stand-in timeout'); }
        catch (e) {
          refused = { code: e.code, session: e.session, messageId: e.messageId, stored: caller.stored };
        }
        const online = new ChatvaultClient({ storage: caller.storage });  // the session it remembered
        const finished = await online.chat(refused.session.session_id, '/stand-in timeout',
                                           { messageId: refused.messageId });
        return { started, stored: client.stored, refused, finished, sent };
        """,
    )
    started, sent = out["started"], out["sent"]
    session = started["session"]
    mid = started["message"]["message_id"]
    assert [(s["route"], s["message_id"], s["status"]) for s in sent] == [
        ("start", mid, 502),
        ("session", mid, 201),
    ]
    assert out["stored"] == {"session_id": session["session_id"], "session_token": session["session_token"]}
    stored = _stored_messages(page_stack, session["session_id"], session["session_token"])
    assert stored == [started["message"], started["reply"]]
    assert [m["role"] for m in stored] == ["user", "assistant"]

    refused = out["refused"]
    assert refused["code"] == "network_error"
    assert refused["session"]["session_token"]
    assert refused["stored"] == {
        "session_id": refused["session"]["session_id"],
        "session_token": refused["session"]["session_token"],
    }
    finished = out["finished"]
    assert finished["message"]["message_id"] == refused["messageId"]
    held = _stored_messages(page_stack, refused["session"]["session_id"], refused["session"]["session_token"])
    assert held == [finished["message"], finished["reply"]]


# ---- the streamed chat (on a stack of its own whose stand-in writes a word every SLOW_WORD_MS) ----

LONG = " ".join(f"w{i}" for i in range(40))  # a reply of 42 words: about 5 s to write


def _said(text: str) -> str:
    return f'You said: "{text}".'


def test_a_streamed_chat_yields_the_reply_as_it_is_written_and_a_replay_yields_none(
    slow_page: Any, slow_stack: LocalStack
) -> None:
    out = _run(
        slow_page,
        """
        sessionStorage.clear();
        const client = new ChatvaultClient({ storage: sessionStorage, storageKey: 'k' });
        const first = client.startChatStream(arg);
        const started = await read(first);
        const stored = JSON.parse(sessionStorage.getItem('k'));
        const pair = await first.result();
        const next = await read(client.chatStream(null, 'and then?'));
        const replay = await read(client.chatStream(null, arg, { messageId: started.messageId }));
        return { started, stored, pair, next, replay };
        """,
        LONG,
    )
    started, replay = out["started"], out["replay"]
    session = started["session"]
    assert started["streamed"] is True
    assert started["messageFirst"] is True  # the stored user message comes before the reply's text
    texts = [d["text"] for d in started["deltas"]]
    assert len(texts) >= 10  # word by word
    assert "".join(texts) == started["text"] == started["reply"]["content"] == _said(LONG)
    assert started["deltas"][-1]["at"] - started["deltas"][0]["at"] >= 1000  # spread over time, as written
    assert out["stored"] == {"session_id": session["session_id"], "session_token": session["session_token"]}
    assert out["pair"] == {"session": session, "message": started["message"], "reply": started["reply"]}
    assert started["message"]["message_id"] == started["messageId"]
    assert "".join(d["text"] for d in out["next"]["deltas"]) == out["next"]["reply"]["content"]
    # the same message_id again: the stored pair, no deltas
    assert replay["deltas"] == []
    assert replay["streamed"] is True
    assert (replay["message"], replay["reply"]) == (started["message"], started["reply"])
    messages = _stored_messages(slow_stack, session["session_id"], session["session_token"])
    assert messages == [started["message"], started["reply"], out["next"]["message"], out["next"]["reply"]]


def test_an_error_event_throws_the_json_forms_error_with_the_message_id(
    slow_page: Any, slow_stack: LocalStack
) -> None:
    out = _run(
        slow_page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        await client.createSession();
        const failures = {};
        for (const command of ['/stand-in throttle', '/stand-in error']) {
          const stream = client.chatStream(null, command);
          try { await read(stream); failures[command] = 'no error'; }
          catch (e) { failures[command] = { ...failure(e), typed: e instanceof ChatvaultError,
                                            asked: stream.messageId, message: stream.message }; }
        }
        const again = failures['/stand-in error'];
        const completed = await read(
          client.chatStream(null, '/stand-in error', { messageId: again.messageId }));
        // a chat that created its session, then failed: the error carries the session, remembered too
        const starter = new ChatvaultClient({ storage: memoryStorage() });
        let started = null;
        try { await read(starter.startChatStream('/stand-in timeout')); }
        catch (e) { started = { ...failure(e), stored: starter.stored }; }
        const finished = await read(
          starter.chatStream(null, '/stand-in timeout', { messageId: started.messageId }));
        // a failure before anything is stored is the answer's own status, thrown from the iteration
        const nobody = new ChatvaultClient({ storage: memoryStorage() });
        nobody.remember(crypto.randomUUID(), 'no such token');
        let missing = null;
        const stream = nobody.chatStream(null, 'hello?');
        try { for await (const _ of stream) { /* nothing */ } } catch (e) { missing = failure(e); }
        return { failures, completed, started, finished, missing, missingId: stream.messageId };
        """,
    )
    throttled, failed = out["failures"]["/stand-in throttle"], out["failures"]["/stand-in error"]
    for error in (throttled, failed):
        assert error["typed"] is True
        assert error["name"] == "ChatvaultError"
        assert error["messageId"] == error["asked"] == error["message"]["message_id"]  # stored, as retried
    assert (throttled["status"], throttled["code"], throttled["retryAfter"]) == (503, "model_unavailable", 5)
    assert (failed["status"], failed["code"]) == (502, "model_unavailable")
    completed = out["completed"]
    assert completed["message"]["message_id"] == failed["messageId"]
    assert "".join(d["text"] for d in completed["deltas"]) == completed["reply"]["content"]
    assert (
        completed["reply"]["content"] == _said("/stand-in error") + ' Earlier you said: "/stand-in throttle"'
    )

    started = out["started"]
    assert (started["status"], started["code"]) == (504, "model_timeout")
    session = started["session"]
    assert session["session_token"]
    assert started["stored"] == {
        "session_id": session["session_id"],
        "session_token": session["session_token"],
    }
    finished = out["finished"]
    assert finished["message"]["message_id"] == started["messageId"]
    assert finished["reply"]["content"] == _said("/stand-in timeout")
    stored = _stored_messages(slow_stack, session["session_id"], session["session_token"])
    assert stored == [finished["message"], finished["reply"]]

    assert out["missing"]["status"] == 404
    assert out["missing"]["code"] == "session_not_found"
    assert out["missing"]["messageId"] == out["missingId"]


def test_where_streaming_is_unavailable_the_json_form_gives_the_pair(
    slow_page: Any, slow_stack: LocalStack
) -> None:
    out = _run(
        slow_page,
        """
        const accepts = [];
        const ignoring = async (url, init) => {  // a proxy that drops Accept: the service answers JSON
          if (url.endsWith('/chat')) {
            accepts.push(init.headers.Accept);
            init = { ...init, headers: { ...init.headers, Accept: 'application/json' } };
          }
          return fetch(url, init);
        };
        const storage = memoryStorage();
        const client = new ChatvaultClient({ storage, fetch: ignoring });
        await client.createSession();
        const proxied = await read(client.chatStream(null, 'through a proxy'));
        const started = await read(new ChatvaultClient({ storage: memoryStorage(), fetch: ignoring })
          .startChatStream('a new one'));
        // a browser that cannot read a response as it arrives: the JSON form is asked for
        const readable = globalThis.ReadableStream;
        globalThis.ReadableStream = undefined;
        let old;
        try {
          const older = new ChatvaultClient({ storage, fetch: ignoring });
          old = await read(older.chatStream(null, 'an old browser'));
        } finally {
          globalThis.ReadableStream = readable;
        }
        // a fetch whose response has no body to read as it arrives: the events all at once
        const whole = async (url, init) => {
          const response = await fetch(url, init);
          if (!url.endsWith('/chat')) return response;
          const text = await response.text();
          return { ok: response.ok, status: response.status, headers: response.headers, body: null,
                   text: async () => text };
        };
        const reader = new ChatvaultClient({ storage, fetch: whole });
        const bodiless = await read(reader.chatStream(null, 'all at once'));
        const stored = (await client.listMessages()).items;
        return { accepts, proxied, started, old, bodiless, stored };
        """,
    )
    assert out["accepts"] == ["text/event-stream", "text/event-stream", "application/json"]
    proxied, old, bodiless = out["proxied"], out["old"], out["bodiless"]
    for pair, said in ((proxied, "through a proxy"), (old, "an old browser")):
        assert pair["streamed"] is False
        assert pair["deltas"] == []
        assert pair["reply"]["content"].startswith(_said(said))
    assert out["started"]["streamed"] is False
    assert out["started"]["session"]["session_token"]
    assert out["started"]["reply"]["content"] == _said("a new one")
    assert bodiless["streamed"] is True
    assert "".join(d["text"] for d in bodiless["deltas"]) == bodiless["reply"]["content"]
    assert bodiless["reply"]["content"].startswith(_said("all at once"))
    pairs = [[p["message"], p["reply"]] for p in (proxied, old, bodiless)]
    assert out["stored"] == [m for pair in pairs for m in pair]


def test_events_split_anywhere_are_read_whole(slow_page: Any, slow_stack: LocalStack) -> None:
    """The stream re-cut into pieces of 1 to 5 bytes (characters split across them), with CRLF line
    ends, a comment and an event the client does not know: the same deltas, the same reply."""
    out = _run(
        slow_page,
        """
        const pieces = async (url, init) => {
          const response = await fetch(url, init);
          if (!url.endsWith('/chat')) return response;
          const text = ': a comment\\r\\n\\r\\nevent: later\\r\\ndata: {}\\r\\n\\r\\n'
            + (await response.text()).replaceAll('\\n', '\\r\\n');
          const bytes = new TextEncoder().encode(text);
          let at = 0;
          const body = new ReadableStream({
            pull(controller) {
              if (at >= bytes.length) return controller.close();
              const size = 1 + (at % 5);
              controller.enqueue(bytes.slice(at, at + size));
              at += size;
            },
          });
          return new Response(body, { status: response.status, headers: response.headers });
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: pieces });
        await client.createSession();
        return await read(client.chatStream(null, arg));
        """,
        "Grüße, 東京 🌸 and “quotes”",
    )
    said = _said("Grüße, 東京 🌸 and “quotes”")
    assert out["reply"]["content"] == said
    assert "".join(d["text"] for d in out["deltas"]) == said
    assert len(out["deltas"]) >= 5


def test_stop_ends_the_reply_and_an_abort_only_stops_reading(slow_page: Any, slow_stack: LocalStack) -> None:
    out = _run(
        slow_page,
        """
        const client = new ChatvaultClient({ storage: memoryStorage() });
        await client.createSession();
        const stream = client.chatStream(null, arg);
        const texts = [];
        let stopping = null;
        for await (const text of stream) {
          texts.push(text);
          if (texts.length === 3) stopping = await client.stop();
        }
        const again = await client.stop();  // nothing is being made now
        // an abort stops reading, not the reply: the service completes and stores it
        const controller = new AbortController();
        const left = client.chatStream(null, arg, { signal: controller.signal });
        let aborted = null;
        try {
          for await (const text of left) controller.abort();
        } catch (e) { aborted = e.name; }
        let replied = null;
        for (let i = 0; i < 100 && !replied; i++) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          const items = (await client.listMessages({ order: 'desc', limit: 1 })).items;
          if (items[0].role === 'assistant') replied = items[0];
        }
        const session = await client.getSession();
        const stored = (await client.listMessages()).items;
        return { texts, stopping, again, reply: stream.reply, aborted, replied, session, stored,
                 leftId: left.messageId };
        """,
        LONG,
    )
    full = _said(LONG)
    reply = out["reply"]
    assert out["stopping"] is True
    assert out["again"] is False
    assert reply["metadata"]["attributes"]["stop_reason"] == "stopped"
    assert full.startswith(reply["content"])
    assert len("".join(out["texts"])) <= len(reply["content"]) < len(full)
    assert out["aborted"] == "AbortError"
    assert out["replied"]["content"] == f'{full} Earlier you said: "{LONG}"'  # completed all the same
    assert out["replied"]["metadata"].get("attributes", {}).get("stop_reason") != "stopped"
    assert out["session"]["replying"] is False
    assert [m["role"] for m in out["stored"]] == ["user", "assistant", "user", "assistant"]
    assert out["stored"][2]["message_id"] == out["leftId"]


# ---- the sealed export object ---------------------------------------------------------------------


def _sealed_link(
    stack: LocalStack, plaintext: bytes, extension: str, chunk_bytes: int, **change: Any
) -> dict:
    """An export object sealed as the service seals one (seal.py), put in the local bucket, and the link
    the service would answer with (`change`: how the stored object differs from the sealed one)."""
    import base64

    from chatvault.core import seal

    s3 = stack.client("s3")
    sid = str(uuid.uuid4())
    name = f"exports/{sid}/{uuid.uuid4()}.{extension}"
    key = seal.export_key(seal.new_key(), sid, name)
    sealed = seal.seal_chunks(key, plaintext, chunk_bytes)
    size = chunk_bytes + seal.CHUNK_OVERHEAD
    chunks = [sealed[i : i + size] for i in range(0, len(sealed), size)]
    if change.get("swap"):
        chunks[0], chunks[1] = chunks[1], chunks[0]
    if change.get("drop_last"):
        chunks = chunks[:-1]
    s3.put_object(Bucket=BUCKET, Key=name, Body=b"".join(chunks), ContentType="application/octet-stream")
    if change.get("gone"):
        s3.delete_object(Bucket=BUCKET, Key=name)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=900)
    return {
        "download_url": url,
        "expires_at": "2030-01-01T00:00:00.000Z",
        "encryption": {
            "algorithm": "AES-256-GCM",
            "key": base64.urlsafe_b64encode(key).decode().rstrip("="),
            "chunk_bytes": chunk_bytes,
            "format": "chatvault.export.sealed/1",
        },
    }


def test_open_export_opens_a_sealed_object_chunk_by_chunk_and_refuses_a_changed_one(
    page: Any, page_stack: LocalStack
) -> None:
    """openExport downloads the link (from the bucket's origin: its CORS allows the GET) and opens it
    with WebCrypto, chunk by chunk: JSON parsed, a transcript as text (characters cut across chunks
    joined whole), an empty one; chunks swapped or the last dropped do not open; a gone object throws."""
    document = {
        "format": "chatvault.export/1",
        "messages": [{"content": f"ünïcode 🙂 {n}"} for n in range(40)],
    }
    text = json.dumps(document, ensure_ascii=False).encode()
    transcript = "# Transcript\n\n" + "🙂 ü " * 300
    links = {
        "json": _sealed_link(page_stack, text, "json", 64),
        "exact": _sealed_link(page_stack, b'"' + b"y" * 126 + b'"', "json", 32),  # 128 bytes: 4 full chunks
        "markdown": _sealed_link(page_stack, transcript.encode(), "md", 7),  # 4-byte characters cut apart
        "empty": _sealed_link(page_stack, b"", "md", 64),
        "swapped": _sealed_link(page_stack, text, "json", 64, swap=True),
        "cut": _sealed_link(page_stack, text, "json", 64, drop_last=True),
        "gone": _sealed_link(page_stack, text, "json", 64, gone=True),
    }
    out = _run(
        page,
        """
        const sent = [];
        const recording = (url, init) => {
          sent.push({ url, headers: (init && init.headers) || null });
          return fetch(url, init);
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: recording });
        client.remember(crypto.randomUUID(), 'a token that must stay with the API');
        const out = {};
        for (const [name, link] of Object.entries(arg)) {
          try { out[name] = { value: await client.openExport(link) }; }
          catch (e) { out[name] = { error: e.name, code: e.code, typed: e instanceof ChatvaultError }; }
        }
        out.sent = sent;
        return out;
        """,
        links,
    )
    assert out["json"] == {"value": document}
    assert out["exact"] == {"value": "y" * 126}
    assert out["markdown"] == {"value": transcript}
    assert out["empty"] == {"value": ""}
    assert out["swapped"] == {"error": "ChatvaultError", "code": "export_broken", "typed": True}
    assert out["cut"] == {"error": "ChatvaultError", "code": "export_broken", "typed": True}
    # a gone object is refused by the bucket: moto's error answer carries no CORS headers, so the
    # browser hides it (a NetworkError); where it carries them, the bucket's code (export_NoSuchKey)
    assert out["gone"] in (
        {"error": "NetworkError", "code": "network_error", "typed": False},
        {"error": "ChatvaultError", "code": "export_NoSuchKey", "typed": True},
    )
    assert [s["url"] for s in out["sent"]] == [link["download_url"] for link in links.values()]
    assert all(not s["headers"] for s in out["sent"])  # no session token or JWT goes to the bucket


def test_export_session_follows_the_link_of_a_large_export_and_opens_it(
    page: Any, page_stack: LocalStack
) -> None:
    """A session past what one answer carries (5.3 MB): exportSession gets the link, downloads the
    sealed object and opens it: the export, as the history has it."""
    created = requests.post(f"{page_stack.api}/api/v1/sessions", json={}, timeout=10).json()
    marker = f"large-{uuid.uuid4().hex[:8]}"
    fill_past_inline(page_stack.api, created["session_id"], created["session_token"], f"{marker} ü ")

    out = _run(
        page,
        r"""
        const answers = [];
        const recording = async (url, init) => {
          const response = await fetch(url, init);
          if (/\/export(\?|$)/.test(String(url))) answers.push(await response.clone().json());
          return response;
        };
        const client = new ChatvaultClient({ storage: memoryStorage(), fetch: recording });
        client.remember(arg.session_id, arg.session_token);
        const exported = await client.exportSession();
        const contents = [];
        for await (const m of client.messages()) contents.push(m.content);
        return { answered: Object.keys(answers[0]).sort(), format: exported.format,
                 session: exported.session.session_id, contents: exported.messages.map((m) => m.content),
                 history: contents };
        """,
        created,
    )
    assert out["answered"] == ["download_url", "encryption", "expires_at"]
    assert out["format"] == "chatvault.export/1"
    assert out["session"] == created["session_id"]
    assert len(out["contents"]) == PAST_INLINE_MESSAGES
    assert out["contents"] == out["history"]
    assert sorted(c[: len(marker) + 9] for c in out["contents"]) == [
        f"{n:05d} {marker} ü " for n in range(PAST_INLINE_MESSAGES)
    ]
