"""The demo page learns of what others write without a reload (issue 26): it polls the history, fast
while a reply is awaited, slowly while idle, once a minute while hidden, and never again after an
erase. A deployment without a model of its own (its chat routes answer 404 `not_found`) is answered
by its own bot ("bot mode"): the page appends the person's message and shows the bot's reply, written
through the service writer, as it lands."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.browser.conftest import UNLIMITED, opened_page
from tests.browser.test_page import (
    _conversation,
    _delete_elsewhere,
    _entries,
    _send,
    _server,
    _service_writes,
    _status,
    _stored,
)
from tests.integration.local_stack import LocalStack, local_stack

pytestmark = pytest.mark.http

CHATS = ["**/api/v1/sessions/*/chat", "**/api/v1/chat"]
NO_ROUTE = {"error": {"code": "not_found", "message": "There is no such route.", "request_id": "test"}}
AWAITING = "Waiting for the reply…"
REPLIED = "The assistant has replied."
HISTORY = re.compile(r"/api/v1/sessions/([0-9a-f-]{36})/messages(\?|$)")


class Seen:
    """The page's requests as the browser sends them: (when, method, url, body)."""

    def __init__(self, page: Any) -> None:
        self.requests: list[tuple[float, str, str, str]] = []
        page.on(
            "request", lambda r: self.requests.append((time.monotonic(), r.method, r.url, r.post_data or ""))
        )

    def polls(self, since: float = 0.0, sid: str | None = None) -> list[str]:
        """The history reads (GET .../messages) sent after `since`, of session `sid` (any: None)."""
        return [
            url
            for at, method, url, _ in self.requests
            if at > since and method == "GET" and (m := HISTORY.search(url)) and (sid is None or m[1] == sid)
        ]

    def chats(self) -> list[str]:
        return [url for _, method, url, _ in self.requests if method == "POST" and url.endswith("/chat")]

    def appends(self) -> list[dict[str, Any]]:
        return [
            json.loads(body)
            for _, method, url, body in self.requests
            if method == "POST" and HISTORY.search(url) and url.endswith("/messages")
        ]


def _no_model_here(page: Any) -> None:
    """The chat routes answer as a deployment without a model does: 404 not_found (no such route)."""
    for pattern in CHATS:
        page.route(
            pattern,
            lambda route: route.fulfill(
                status=404, content_type="application/json", body=json.dumps(NO_ROUTE)
            ),
        )


def _type(page: Any, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def _hide(page: Any, hidden: bool) -> None:
    """As a browser does when the tab goes to the background (or comes back)."""
    page.evaluate(
        """(hidden) => {
             const state = hidden ? "hidden" : "visible";
             Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
             Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
             document.dispatchEvent(new Event("visibilitychange"));
           }""",
        hidden,
    )


def _asked(page: Any, text: str) -> None:
    """Bot mode: the message is sent, stored (no longer pending) and its reply awaited."""
    _type(page, text)
    _conversation(page).locator("li.user:not(.pending) .content", has_text=text).wait_for()
    page.get_by_role("status").filter(has_text=AWAITING).wait_for()


@pytest.fixture(scope="session")
def no_model_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack whose deployment has no model (`ModelId=` empty): its chat routes are not there."""
    with local_stack(tmp_path_factory.mktemp("no-model"), f"{UNLIMITED} ModelId=") as started:
        yield started


@pytest.fixture
def bot_page(browser: Any, no_model_stack: LocalStack) -> Iterator[tuple[Any, LocalStack]]:
    """The page on a deployment answered by its own bot: a stack started with `ModelId=`, whose chat
    routes answer 404 not_found (checked first: the page's bot mode rests on that answer)."""
    created = requests.post(f"{no_model_stack.api}/api/v1/sessions", timeout=10).json()
    chat = requests.post(
        f"{no_model_stack.api}/api/v1/sessions/{created['session_id']}/chat",
        json={"content": "is there a model?"},
        headers={"X-Session-Token": created["session_token"]},
        timeout=30,
    )
    assert (chat.status_code, chat.json()["error"]["code"]) == (404, "not_found")
    with opened_page(browser, no_model_stack) as page:
        yield page, no_model_stack


def test_a_reply_written_by_the_service_writer_appears_without_a_reload(
    page: Any, page_stack: LocalStack
) -> None:
    """The built-in model's page, idle: what the bot's back end writes shows within the idle cadence."""
    stored = _stored(page) or {}
    seen = Seen(page)
    _send(page, "Hello, my name is Ada")
    page.evaluate("window.notReloaded = true")
    written = f"A volunteer will call you back. ({uuid.uuid4()})"

    _service_writes(page_stack, stored["session_id"], "assistant", written)

    _conversation(page).locator("li.assistant .content", has_text=written).wait_for(timeout=13_000)
    assert page.evaluate("window.notReloaded") is True
    expected = [
        ("You", "Hello, my name is Ada"),
        ("Assistant", 'You said: "Hello, my name is Ada".'),
        ("Assistant", written),
    ]
    assert _entries(page) == expected
    # the next poll finds nothing new: nothing is shown twice
    after = time.monotonic()
    with page.expect_request(lambda r: r.method == "GET" and bool(HISTORY.search(r.url)), timeout=13_000):
        pass
    page.wait_for_timeout(500)
    assert seen.polls(after)
    assert _entries(page) == expected
    assert len(seen.chats()) == 1  # only the person's message was a chat


def test_bot_mode_appends_the_message_and_shows_the_bots_reply_as_it_lands(
    bot_page: tuple[Any, LocalStack],
) -> None:
    page, stack = bot_page
    stored = _stored(page) or {}
    sid = stored["session_id"]
    seen = Seen(page)
    page.evaluate("window.notReloaded = true")

    _asked(page, "Is anyone there?")

    assert len(seen.chats()) == 1  # the first attempt, answered 404 not_found: the mode is learned
    held = _server(stack, stored, "/messages").json()["items"]
    assert [(m["role"], m["content"]) for m in held] == [("user", "Is anyone there?")]
    assert [a["message_id"] for a in seen.appends()] == [held[0]["message_id"]]  # stored by the append
    assert seen.appends()[0]["role"] == "user"
    assert _status(page).inner_text() == AWAITING
    assert page.get_by_role("button", name="Send", exact=True).is_enabled()  # nothing is being made here
    assert page.get_by_role("button", name="Stop", exact=True).is_hidden()
    assert page.locator("#reply-problem").inner_text() == ""

    _service_writes(stack, sid, "assistant", "Yes, I am here. How can I help?")
    _conversation(page).locator("li.assistant .content", has_text="Yes, I am here").wait_for(timeout=4000)
    page.get_by_role("status").filter(has_text=REPLIED).wait_for(timeout=2000)

    _asked(page, "I need to talk to someone.")  # the mode is remembered: no chat is tried again
    assert len(seen.chats()) == 1
    _service_writes(stack, sid, "assistant", "Someone will be with you in a minute.")
    _conversation(page).locator("li.assistant .content", has_text="in a minute").wait_for(timeout=4000)

    assert page.evaluate("window.notReloaded") is True
    assert _entries(page) == [
        ("You", "Is anyone there?"),
        ("Assistant", "Yes, I am here. How can I help?"),
        ("You", "I need to talk to someone."),
        ("Assistant", "Someone will be with you in a minute."),
    ]
    messages = _server(stack, stored, "/messages").json()["items"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Is anyone there?"),
        ("assistant", "Yes, I am here. How can I help?"),
        ("user", "I need to talk to someone."),
        ("assistant", "Someone will be with you in a minute."),
    ]
    assert _conversation(page).locator("li.pending, li.failed").count() == 0


def test_bot_mode_says_no_reply_yet_after_a_minute_and_shows_a_later_reply(
    browser: Any, page_stack: LocalStack
) -> None:
    """The wait is bounded (the page's clock is moved on a minute): then it says so, polls slowly, and
    a reply that comes later still shows."""
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.clock.install()
        page.goto(f"{page_stack.api}/")
        page.wait_for_selector("body[data-session-ready=true]")
        _no_model_here(page)
        stored = _stored(page) or {}
        _asked(page, "Hello?")

        page.clock.fast_forward("01:01")  # a minute and a second later, as the page's clock tells

        page.get_by_role("status").filter(has_text="No reply yet.").wait_for()
        asked = _conversation(page).locator("li.user").last
        assert "No reply yet" in asked.inner_text()
        assert _conversation(page).locator("li.failed").count() == 0  # stored: nothing to retry
        _service_writes(page_stack, stored["session_id"], "assistant", "Sorry, I was away.")
        page.clock.fast_forward("00:11")  # the idle poll
        _conversation(page).locator("li.assistant .content", has_text="I was away").wait_for()
        page.get_by_role("status").filter(has_text=REPLIED).wait_for()
        assert "No reply yet" not in asked.inner_text()
    finally:
        context.close()


def test_the_poll_backs_off_while_hidden_and_asks_at_once_when_shown(
    page: Any, page_stack: LocalStack
) -> None:
    _no_model_here(page)
    stored = _stored(page) or {}
    seen = Seen(page)
    _asked(page, "Are you there?")
    start = time.monotonic()
    page.wait_for_timeout(3000)
    assert len(seen.polls(start)) >= 2  # awaiting, visible: about every second

    _hide(page, True)
    hidden = time.monotonic() + 0.3  # (a request already sent may still be reported)
    _service_writes(page_stack, stored["session_id"], "assistant", "I am here.")
    page.wait_for_timeout(4000)
    assert seen.polls(hidden) == []  # hidden: once a minute
    assert _conversation(page).locator("li.assistant").count() == 0

    shown = time.monotonic()
    _hide(page, False)
    _conversation(page).locator("li.assistant .content", has_text="I am here.").wait_for(timeout=800)
    assert seen.polls(shown)  # asked at once
    page.get_by_role("status").filter(has_text=REPLIED).wait_for(timeout=2000)


# Every fetch the page makes, in the order it makes them; an erase's DELETE takes 2.5 s to be sent
# (a slow network), long enough for a poll that was not stopped to ask meanwhile.
FETCHES = """
window.fetches = [];
const real = window.fetch.bind(window);
window.fetch = async (url, init = {}) => {
  window.fetches.push(`${init.method || "GET"} ${url}`);
  if (init.method === "DELETE") await new Promise((resolve) => setTimeout(resolve, 2500));
  return real(url, init);
};
"""


def test_the_poll_stops_for_good_after_the_panic_button(page: Any, page_stack: LocalStack) -> None:
    page.add_init_script(FETCHES)
    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")
    _no_model_here(page)
    stored = _stored(page) or {}
    _asked(page, "Please answer soon.")
    page.wait_for_timeout(2500)

    page.get_by_role("button", name="Erase this conversation", exact=True).click()
    page.get_by_role("dialog", name="Erase this conversation?").get_by_role(
        "button", name="Erase everything"
    ).click()
    page.get_by_role("status").filter(has_text="Erased").wait_for()
    page.wait_for_timeout(3500)

    fetches: list[str] = page.evaluate("window.fetches")
    erase = fetches.index(f"DELETE /api/v1/sessions/{stored['session_id']}")
    assert [f for f in fetches[:erase] if f.startswith("GET") and HISTORY.search(f)]  # awaiting: polled
    assert fetches[erase + 1 :] == []  # nothing more: no poll, and no conversation started by itself
    assert _status(page).inner_text() == ""  # no longer waiting for anything
    assert _stored(page) is None
    assert _server(page_stack, stored).status_code == 404


def test_a_session_gone_while_polled_is_left_for_a_new_one(page: Any, page_stack: LocalStack) -> None:
    """Erased elsewhere (another device): the poll's 404 is handled as any call's (a new conversation,
    the reset notice, nothing of the old one shown) and the old session is asked about no more."""
    _no_model_here(page)
    stored = _stored(page) or {}
    seen = Seen(page)
    _asked(page, "Something private")
    _delete_elsewhere(page_stack, stored)

    page.get_by_role("status").filter(has_text="no longer available").wait_for(timeout=5000)
    noticed = time.monotonic()
    assert _entries(page) == []
    fresh = _stored(page) or {}
    assert fresh["session_id"] != stored["session_id"]
    page.wait_for_timeout(2500)
    assert seen.polls(noticed, stored["session_id"]) == []
