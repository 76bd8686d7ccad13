"""The demo page in headless Chromium, driven by its accessible names (docs/API.md, "The browser page"),
against the local stack: what the page shows, what the browser keeps, and what the service holds."""

from __future__ import annotations

import base64
import itertools
import json
import sqlite3
import time
import uuid
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.browser.conftest import CHROMIUM_ARGS, UNLIMITED, chromium_path
from tests.helpers import BUCKET
from tests.integration.local_stack import LocalStack, local_stack, table_items

pytestmark = pytest.mark.http
KEY = "chatvault.session"
PENDING = f"{KEY}.erase"  # the erase a quick exit left to finish
RESET = "no longer available"
SESSIONS = "**/api/v1/sessions/*"


def _stored(page: Any) -> dict[str, Any] | None:
    raw = page.evaluate(f"localStorage.getItem({KEY!r})")
    return json.loads(raw) if raw else None


def _conversation(page: Any) -> Any:
    return page.get_by_role("log", name="Conversation")


def _texts(page: Any) -> list[str]:
    return _conversation(page).locator("li .content").all_inner_texts()


def _entries(page: Any) -> list[tuple[str, str]]:
    """The conversation as shown: who said it (the label a screen reader reads first) and what."""
    items = _conversation(page).get_by_role("listitem")
    return [(i.locator(".who").inner_text(), i.locator(".content").inner_text()) for i in items.all()]


def _said(text: str, *earlier: str) -> str:
    """The stand-in model's reply to `text`, after the user messages `earlier`."""
    reply = f'You said: "{text}".'
    return reply + (" Earlier you said: " + "; ".join(f'"{e}"' for e in earlier) if earlier else "")


# A reply shown complete: the stored one, not the one still being written (marked busy meanwhile)
REPLY = "li.assistant:not([aria-busy]) .content"


def _send(page: Any, text: str) -> None:
    """Send, and wait for the exchange: the message stored and the reply to it shown."""
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    _conversation(page).locator("li.user:not(.pending) .content", has_text=text).wait_for()
    _conversation(page).locator(REPLY, has_text=f'You said: "{text}".').wait_for()


def _notices(page: Any) -> str:
    return " ".join(
        page.get_by_role("status").all_inner_texts() + page.get_by_role("alert").all_inner_texts()
    )


def _objects(stack: LocalStack, sid: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"uploads/{sid}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def _server(stack: LocalStack, stored: dict[str, Any], path: str = "") -> requests.Response:
    return requests.get(
        f"{stack.api}/api/v1/sessions/{stored['session_id']}{path}",
        headers={"X-Session-Token": stored["session_token"]},
        timeout=10,
    )


def _delete_elsewhere(stack: LocalStack, stored: dict[str, Any]) -> None:
    """The page's conversation deleted by another device (its own DELETE, with the token)."""
    deleted = requests.delete(
        f"{stack.api}/api/v1/sessions/{stored['session_id']}",
        headers={"X-Session-Token": stored["session_token"]},
        timeout=10,
    )
    assert deleted.status_code == 200


def _held(stack: LocalStack, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages the service holds for the page's conversation."""
    items: list[dict[str, Any]] = _server(stack, stored, "/messages").json()["items"]
    return items


def _attach(page: Any, name: str, body: bytes, mime: str = "text/plain") -> None:
    """Attach a file and wait for its outcome in Files (stored, or not)."""
    page.get_by_label("Attach a file", exact=True).set_input_files(
        {"name": name, "mimeType": mime, "buffer": body}
    )
    page.locator("#uploads li:last-child[data-status]").wait_for()


def _files(page: Any) -> Any:
    return page.get_by_role("list", name="Files")


def _file_rows(page: Any) -> list[tuple[str, str, bool]]:
    """Files as shown: what it is (type · size), its state, and whether it has a Download link."""
    return [
        (
            i.locator(".file").inner_text(),
            i.locator(".state").inner_text(),
            i.get_by_role("link").count() == 1,
        )
        for i in _files(page).get_by_role("listitem").all()
    ]


def _nothing_left(stack: LocalStack, sid: str, secrets: list[str]) -> None:
    """No item of any table is the session's or holds its content; no object is under its folder."""
    items = table_items(stack)
    assert not [i for i in items if i.get("pk", {}).get("S", "").endswith(sid)]
    dump = json.dumps(items, default=repr)  # sealed values are bytes
    for secret in [sid, *secrets]:
        assert secret not in dump
    assert _objects(stack, sid) == []


def test_first_visit_three_messages_and_a_reload_keeps_them(
    page: Any, page_stack: LocalStack, artifacts: Path
) -> None:
    first = _stored(page)
    assert first
    assert first["session_id"]
    assert first["session_token"]
    assert _notices(page).strip() == ""  # a first visit is not a reset
    for text in ("Hello, is anyone there?", "I would like some advice.", "Thank you."):
        _send(page, text)

    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")

    said = ["Hello, is anyone there?", "I would like some advice.", "Thank you."]
    assert _texts(page) == [
        said[0],
        _said(said[0]),
        said[1],
        _said(said[1], said[0]),
        said[2],
        _said(said[2], *said[:2]),
    ]
    assert _stored(page) == first
    assert RESET not in _notices(page)
    served = _server(page_stack, first).json()
    assert served["message_count"] == 6
    messages = _held(page_stack, first)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3  # each message a chat: its reply
    page.screenshot(path=str(artifacts / "page.png"), full_page=True)


def test_rename_is_stored(page: Any, page_stack: LocalStack) -> None:
    page.get_by_label("Conversation title").fill("Onboarding questions")
    page.get_by_role("button", name="Rename", exact=True).click()
    page.get_by_role("heading", name="Onboarding questions").wait_for()
    assert _server(page_stack, _stored(page) or {}).json()["title"] == "Onboarding questions"


def test_thumbs_on_a_reply_rate_it_change_it_and_remove_it(page: Any, page_stack: LocalStack) -> None:
    """Each stored reply has "Good reply" and "Bad reply" toggles: pressing one stores the feedback,
    the other replaces it, pressing the pressed one removes it; a reload shows what is stored."""
    _send(page, "Rate this.")
    reply = _conversation(page).locator("li.assistant:not([aria-busy])", has_text='You said: "Rate this."')
    good = reply.get_by_role("button", name="Good reply", exact=True)
    bad = reply.get_by_role("button", name="Bad reply", exact=True)
    assert (good.get_attribute("aria-pressed"), bad.get_attribute("aria-pressed")) == ("false", "false")
    assert _conversation(page).locator("li.user").get_by_role("button").count() == 0  # replies only
    stored = _stored(page) or {}

    def served() -> Any:
        items = _held(page_stack, stored)
        return [m["feedback"] for m in items if m["role"] == "assistant"][-1]

    good.click()
    page.wait_for_function("(el) => el.getAttribute('aria-pressed') === 'true'", arg=good.element_handle())
    assert served()["rating"] == "up"
    bad.click()
    page.wait_for_function("(el) => el.getAttribute('aria-pressed') === 'true'", arg=bad.element_handle())
    assert good.get_attribute("aria-pressed") == "false"
    assert served()["rating"] == "down"

    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")
    reply = _conversation(page).locator("li.assistant:not([aria-busy])", has_text='You said: "Rate this."')
    bad = reply.get_by_role("button", name="Bad reply", exact=True)
    assert bad.get_attribute("aria-pressed") == "true"
    bad.click()
    page.wait_for_function("(el) => el.getAttribute('aria-pressed') === 'false'", arg=bad.element_handle())
    assert served() is None
    assert "Your feedback was removed." in _notices(page)


def test_share_copies_a_link_whose_page_shows_the_conversation_as_it_was(
    page: Any, page_stack: LocalStack
) -> None:
    """ "Share" shows (and copies, where allowed) a link to shared.html#<id>; that page, opened by anyone
    (here: a fresh browser profile), shows the conversation up to the link's moment, read-only; after
    the panic button it says the link no longer works."""
    _send(page, "Before sharing.")
    page.get_by_role("button", name="Share", exact=True).click()
    field = page.get_by_label("Share link", exact=True)
    field.wait_for(state="visible")
    link = field.input_value()
    assert link.startswith(f"{page_stack.api}/shared.html#")
    assert len(link.rsplit("#", 1)[1]) == 22
    page.wait_for_function("() => document.getElementById('notice').textContent.includes('Anyone with it')")
    _send(page, "After sharing.")

    reader = page.context.browser.new_context().new_page()
    try:
        reader.goto(link)
        reader.wait_for_selector("body[data-loaded=true]")
        log = reader.get_by_role("log", name="Shared conversation")
        texts = log.locator("li .content").all_inner_texts()
        assert texts == ["Before sharing.", 'You said: "Before sharing.".']
        assert reader.get_by_role("textbox").count() == 0  # read-only: nothing to type into
        assert reader.locator("meta[name=referrer]").get_attribute("content") == "no-referrer"

        page.get_by_role("button", name="Erase this conversation", exact=True).click()
        page.get_by_role("button", name="Erase everything", exact=True).click()
        page.wait_for_function("() => !document.getElementById('log').children.length")
        reader.reload()
        reader.wait_for_selector("body[data-loaded=true]")
        assert "not available" in reader.get_by_role("alert").inner_text()
        assert reader.get_by_role("log", name="Shared conversation").locator("li").count() == 0
    finally:
        reader.context.close()


def test_a_temporary_conversation_says_exactly_when_it_disappears(page: Any, page_stack: LocalStack) -> None:
    """ "New temporary conversation" starts one; a sentence says when it is deleted (its expires_at, in
    local time), and each message moves that time; a reload keeps it; "New conversation" ends it."""
    hint = page.locator("#temporary-hint").inner_text()
    assert "deleted for good" in hint
    assert "never listed" in hint
    note = page.locator("#temporary-note")
    assert note.is_hidden()  # an ordinary conversation says nothing of the sort
    page.get_by_role("button", name="New temporary conversation", exact=True).click()
    note.wait_for(state="visible")
    stored = _stored(page) or {}
    served = _server(page_stack, stored).json()
    assert served["temporary"] is True

    def expiry() -> str:
        return str(_server(page_stack, stored).json()["expires_at"])

    def sentence(iso: str) -> str:  # the page's own formatting of a time (today: the clock alone)
        shown = page.evaluate(
            """(iso) => {
                const date = new Date(iso);
                const style = date.toDateString() === new Date().toDateString()
                  ? { timeStyle: "short" } : { dateStyle: "medium", timeStyle: "short" };
                return new Intl.DateTimeFormat(undefined, style).format(date);
            }""",
            iso,
        )
        return (
            f"This is a temporary conversation: it will be deleted for good at {shown}, "
            "unless you write again before then."
        )

    created = expiry()
    assert note.get_attribute("data-expires-at") == created
    assert note.inner_text() == sentence(created)
    _send(page, "Only for now.")
    moved = expiry()  # the key's TTL moves about once an hour of activity: maybe the same time
    page.wait_for_function(
        "(iso) => document.querySelector('#temporary-note').dataset.expiresAt === iso", arg=moved
    )
    assert note.inner_text() == sentence(moved)

    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")
    note.wait_for(state="visible")
    assert note.get_attribute("data-expires-at") == moved
    page.get_by_role("button", name="New conversation", exact=True).click()
    page.wait_for_function("() => document.querySelector('#temporary-note').hidden")
    assert _server(page_stack, _stored(page) or {}).json()["temporary"] is False


def test_keyboard_only_enter_sends(page: Any, page_stack: LocalStack) -> None:
    page.get_by_label("Message", exact=True).focus()
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Enter")
    _conversation(page).locator("li.user:not(.pending) .content", has_text="typed, not clicked").wait_for()
    assert page.evaluate("document.activeElement.id") == "message"  # ready for the next one


def test_an_upload_reaches_the_bucket(page: Any, page_stack: LocalStack) -> None:
    sid = (_stored(page) or {})["session_id"]
    body = b"a letter from the landlord\n" * 40

    _attach(page, "letter.txt", body)

    item = page.locator("#uploads li").last
    assert item.get_attribute("data-status") == "stored", item.inner_text()
    assert "stored" in item.inner_text()
    assert page.locator("#upload-progress").is_hidden()
    (key,) = _objects(page_stack, sid)
    assert key == f"uploads/{sid}/{item.get_attribute('data-upload-id')}"
    assert page_stack.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == body


def test_the_panic_button_erases_everything_after_a_confirmation(page: Any, page_stack: LocalStack) -> None:
    stored = _stored(page) or {}
    sid = stored["session_id"]
    secret = f"my address is {uuid.uuid4()}"
    _send(page, secret)
    _attach(page, "evidence.txt", b"evidence\n")
    assert page.locator("#uploads li").last.get_attribute("data-status") == "stored"
    assert len(_objects(page_stack, sid)) == 1

    page.get_by_role("button", name="Erase this conversation", exact=True).click()
    dialog = page.get_by_role("dialog", name="Erase this conversation?")
    dialog.get_by_role("button", name="Cancel").click()  # asking first: cancel keeps everything
    assert _server(page_stack, stored).status_code == 200
    page.get_by_role("button", name="Erase this conversation", exact=True).click()
    dialog.get_by_role("button", name="Erase everything").click()

    page.get_by_role("status").filter(has_text="Erased").wait_for()
    assert "2 messages and 1 file" in _notices(page)  # the message and its reply
    assert _stored(page) is None
    assert _texts(page) == []
    assert page.get_by_label("Message", exact=True).is_disabled()
    gone = _server(page_stack, stored)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "session_not_found"
    _nothing_left(page_stack, sid, [secret, stored["session_token"], "evidence"])

    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("status").filter(has_text="new conversation has started").wait_for()
    fresh = _stored(page) or {}
    assert fresh["session_id"] != sid
    assert page.get_by_label("Message", exact=True).is_enabled()


def test_a_session_deleted_elsewhere_shows_the_reset_notice(page: Any, page_stack: LocalStack) -> None:
    stored = _stored(page) or {}
    _send(page, "this will be deleted on another device")
    _delete_elsewhere(page_stack, stored)

    page.reload()
    page.get_by_role("status").filter(has_text=RESET).wait_for()

    fresh = _stored(page) or {}
    assert fresh["session_id"] != stored["session_id"]
    assert _texts(page) == []
    assert _server(page_stack, fresh).status_code == 200
    # and a second reload keeps the new one quietly
    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")
    assert _stored(page) == fresh
    assert RESET not in _notices(page)


@pytest.mark.parametrize(
    "tampered",
    [
        lambda s: {**s, "session_id": str(uuid.uuid4())},  # an id that does not exist
        lambda s: {**s, "session_token": "forged"},  # the right id, a wrong token
        lambda s: {**s, "session_id": "../../sessions"},  # not an id at all
        lambda s: "{not json",
    ],
    ids=["other-id", "wrong-token", "not-an-id", "garbage"],
)
def test_a_tampered_stored_session_shows_the_reset_notice(
    page: Any, page_stack: LocalStack, tampered: Any
) -> None:
    stored = _stored(page) or {}
    value = tampered(stored)
    page.evaluate(
        "([k, v]) => localStorage.setItem(k, v)",
        [KEY, value if isinstance(value, str) else json.dumps(value)],
    )

    page.reload()
    page.get_by_role("status").filter(has_text=RESET).wait_for()

    fresh = _stored(page) or {}
    assert fresh["session_id"] != stored["session_id"]
    assert _server(page_stack, fresh).status_code == 200
    assert _server(page_stack, stored).status_code == 200  # the real one was not touched


def test_escape_twice_erases_and_leaves(page: Any, page_stack: LocalStack) -> None:
    stored = _stored(page) or {}
    secret = f"quick exit {uuid.uuid4()}"
    _send(page, secret)
    page.reload()  # warm now: ready well within a second of loading
    page.wait_for_selector("body[data-session-ready=true]")
    page.keyboard.press("Escape")  # just after loading: one Escape alone does nothing
    page.wait_for_timeout(1200)
    assert _server(page_stack, stored).status_code == 200  # one Escape alone does nothing
    assert page.url.endswith("/")

    page.get_by_label("Message", exact=True).focus()  # from anywhere on the page, the message box too
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")

    page.wait_for_url("about:blank")
    # the page leaves at once; its keepalive DELETE outlives it, and the service answers 404 from the
    # erase's first write: wait for the rest of the erase (messages, markers, files) too
    deadline = time.monotonic() + 15
    while True:
        try:
            assert _server(page_stack, stored).status_code == 404
            _nothing_left(page_stack, stored["session_id"], [secret, stored["session_token"]])
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    page.goto(f"{page_stack.api}/")  # nothing kept in the browser either: a first visit, no notice
    page.wait_for_selector("body[data-session-ready=true]")
    assert (_stored(page) or {})["session_id"] != stored["session_id"]
    assert page.evaluate(f"localStorage.getItem({PENDING!r})") is None  # the erase is confirmed: no record
    assert RESET not in _notices(page)


def test_the_page_is_served_with_its_client_and_nothing_else(page_stack: LocalStack) -> None:
    root = requests.get(f"{page_stack.api}/", timeout=10)
    assert root.status_code == 200
    assert root.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in root.headers["Content-Security-Policy"]
    client = requests.get(f"{page_stack.api}/chatvault.js", timeout=10)
    assert client.headers["Content-Type"].startswith("text/javascript")
    assert "export class ChatvaultClient" in client.text
    for path in ("/../README.md", "/.gitignore", "/conftest.py", "/web/app.js", "/api/v1/"):
        assert requests.get(f"{page_stack.api}{path}", timeout=10).status_code == 404, path
    assert requests.post(f"{page_stack.api}/", timeout=10).status_code == 404


def test_the_local_bucket_refuses_an_origin_that_allowed_origins_does_not_name(
    browser: Any, tmp_path: Path
) -> None:
    """The local S3 answers the browser from the bucket's CorsConfiguration (AllowedOrigins), as S3 does:
    a page whose origin is not allowed cannot post its file (the API itself is same-origin here)."""
    with local_stack(tmp_path, f"AllowedOrigins=https://chat.example.org {UNLIMITED}") as only_there:
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{only_there.api}/")
            page.wait_for_selector("body[data-session-ready=true]")
            sid = (_stored(page) or {})["session_id"]
            _attach(page, "refused.txt", b"not from here\n")
            assert page.locator("#uploads li").last.get_attribute("data-status") == "failed"
            assert "not stored" in _notices(page)
            assert _objects(only_there, sid) == []
        finally:
            context.close()


def test_one_escape_as_the_page_opens_is_not_a_quick_exit(browser: Any, page_stack: LocalStack) -> None:
    """The first Escape has no earlier one to pair with, however soon after loading it comes."""
    context = browser.new_context()
    context.add_init_script(
        "document.addEventListener('DOMContentLoaded', () =>"
        " document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true })))"
    )
    page = context.new_page()
    try:
        page.goto(f"{page_stack.api}/")
        page.wait_for_selector("body[data-session-ready=true]")
        page.wait_for_timeout(1200)
        assert page.url == f"{page_stack.api}/"
        assert _server(page_stack, _stored(page) or {}).status_code == 200
    finally:
        context.close()


def _retry(page: Any) -> Any:
    return page.get_by_role("button", name="Try erasing again")


def _abort_deletes(route: Any) -> None:
    if route.request.method == "DELETE":
        route.abort()
    else:
        route.continue_()


def _answer_deletes_503(route: Any) -> None:
    """The function's own "retry the delete" (it ran out of time), as often as asked."""
    if route.request.method != "DELETE":
        route.continue_()
        return
    error = {"error": {"code": "service_unavailable", "message": "Retry the delete.", "request_id": "r"}}
    headers = {"Retry-After": "0", "Content-Type": "application/json"}
    route.fulfill(status=503, headers=headers, body=json.dumps(error))


@pytest.mark.parametrize("cut", ["offline", "503"])
def test_an_erase_that_does_not_go_through_keeps_the_session_and_offers_a_retry(
    page: Any, page_stack: LocalStack, cut: str
) -> None:
    stored = _stored(page) or {}
    secret = f"erase this for good {uuid.uuid4()}"
    _send(page, secret)
    if cut == "offline":
        page.context.set_offline(True)
    else:
        page.route(SESSIONS, _answer_deletes_503)

    page.get_by_role("button", name="Erase this conversation", exact=True).click()
    page.get_by_role("dialog", name="Erase this conversation?").get_by_role(
        "button", name="Erase everything"
    ).click()

    page.get_by_role("alert").filter(has_text="Not erased").wait_for()
    assert "still on the server" in _notices(page)
    assert "Erased at" not in _notices(page)
    assert _retry(page).is_visible()
    assert _stored(page) == stored  # kept: the erase can still be finished from here
    assert _server(page_stack, stored).json()["message_count"] == 2  # the message and its reply

    if cut == "offline":
        page.context.set_offline(False)
    else:
        page.unroute(SESSIONS)
    _retry(page).click()

    page.get_by_role("status").filter(has_text="Erased at").wait_for()
    assert "2 messages and 0 files" in _notices(page)
    assert not _retry(page).is_visible()
    assert _stored(page) is None
    assert _texts(page) == []
    assert _server(page_stack, stored).status_code == 404
    _nothing_left(page_stack, stored["session_id"], [secret, stored["session_token"]])


def _quick_exit_offline(page: Any, page_stack: LocalStack, title: str, secret: str) -> dict[str, Any]:
    """A titled conversation with a message, left by the quick exit while the browser is offline."""
    stored = _stored(page) or {}
    page.get_by_label("Conversation title").fill(title)
    page.get_by_role("button", name="Rename", exact=True).click()
    page.get_by_role("heading", name=title).wait_for()
    _send(page, secret)
    page.context.set_offline(True)

    started = time.monotonic()
    page.get_by_role("button", name="Quick exit").click()
    page.wait_for_url("about:blank")

    assert time.monotonic() - started < 2  # at once: it does not wait for the DELETE's answer
    assert _server(page_stack, stored).status_code == 200  # the DELETE never reached the service
    page.context.set_offline(False)
    return stored


def _shows_nothing_of(page: Any, title: str, secret: str) -> None:
    assert _texts(page) == []
    html = page.content()
    assert title not in html
    assert secret not in html
    assert page.title() == "Chat"
    assert page.get_by_label("Conversation title").input_value() == ""


def test_a_quick_exit_offline_leaves_at_once_and_the_next_visit_finishes_the_erase_first(
    page: Any, page_stack: LocalStack
) -> None:
    title, secret = f"Leaving on Friday {uuid.uuid4()}", f"the spare key is {uuid.uuid4()}"
    stored = _quick_exit_offline(page, page_stack, title, secret)
    sid = stored["session_id"]
    calls: list[tuple[str, str]] = []
    page.on("request", lambda r: calls.append((r.method, r.url)) if "/api/v1/" in r.url else None)

    page.goto(f"{page_stack.api}/")  # the next visit, online again
    page.wait_for_selector("body[data-session-ready=true]")

    assert calls[0] == ("DELETE", f"{page_stack.api}/api/v1/sessions/{sid}")  # before anything else
    assert [c for c in calls[1:] if sid in c[1]] == []  # nothing of the old session was read
    _shows_nothing_of(page, title, secret)
    assert _notices(page).strip() == ""  # a visit like a first one: nothing says there was a conversation
    assert page.evaluate(f"localStorage.getItem({PENDING!r})") is None
    assert (_stored(page) or {})["session_id"] != sid
    assert _server(page_stack, stored).status_code == 404
    _nothing_left(page_stack, sid, [secret, title, stored["session_token"]])


def test_a_quick_exits_erase_that_fails_again_is_kept_shown_plainly_and_retried(
    page: Any, page_stack: LocalStack
) -> None:
    title, secret = f"Leaving on Monday {uuid.uuid4()}", f"the bank is {uuid.uuid4()}"
    stored = _quick_exit_offline(page, page_stack, title, secret)
    sid = stored["session_id"]
    page.route(SESSIONS, _abort_deletes)  # online, but the DELETE still does not get through

    page.goto(f"{page_stack.api}/")
    page.get_by_role("alert").filter(has_text="not been erased").wait_for()

    assert "still on the server" in _notices(page)
    assert _retry(page).is_visible()
    _shows_nothing_of(page, title, secret)
    assert page.get_by_label("Message", exact=True).is_disabled()
    kept = page.evaluate("({ ...localStorage })")
    assert kept == {PENDING: json.dumps([stored], separators=(",", ":"))}  # the id and token, nothing else
    assert _server(page_stack, stored).status_code == 200

    page.unroute(SESSIONS)
    _retry(page).click()
    page.wait_for_selector("body[data-session-ready=true]")

    page.get_by_role("status").filter(has_text="earlier conversation is erased").wait_for()
    assert not _retry(page).is_visible()
    _shows_nothing_of(page, title, secret)
    assert page.evaluate(f"localStorage.getItem({PENDING!r})") is None
    assert (_stored(page) or {})["session_id"] != sid
    assert _server(page_stack, stored).status_code == 404
    _nothing_left(page_stack, sid, [secret, title, stored["session_token"]])


def test_the_quick_exit_leaves_no_conversation_title_in_the_browsers_history(
    browser: Any, page_stack: LocalStack, tmp_path: Path
) -> None:
    """Chromium's history keeps the title a page had as it loaded, and takes a later change of
    document.title only within a few seconds of loading: the quick exit resets the title and replaces
    the history entry, so the history keeps the neutral one. Read from the profile's History database
    once the browser has closed."""
    profile = tmp_path / "profile"
    context = browser.browser_type.launch_persistent_context(
        str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    title = f"Leaving him {uuid.uuid4().hex[:8]}"
    try:
        page = context.new_page()
        page.goto(f"{page_stack.api}/")
        page.wait_for_selector("body[data-session-ready=true]")
        page.get_by_label("Conversation title").fill(title)
        page.get_by_role("button", name="Rename", exact=True).click()
        page.get_by_role("heading", name=title).wait_for()
        page.reload()  # the title is set as the page loads: the history takes it
        page.wait_for_selector("body[data-session-ready=true]")
        assert page.title() == f"{title} - Chat"
        stored = _stored(page) or {}
        page.wait_for_timeout(6000)  # past the window (5 s) in which a title change alone still counts

        page.get_by_role("button", name="Quick exit").click()
        page.wait_for_url("about:blank")

        deadline = time.monotonic() + 15
        while _server(page_stack, stored).status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        context.close()
    with closing(sqlite3.connect(f"file:{profile / 'Default' / 'History'}?mode=ro", uri=True)) as db:
        visited = db.execute("SELECT url, title FROM urls").fetchall()
    assert (f"{page_stack.api}/", "Chat") in visited  # the page is in the history, under the neutral title
    assert [row for row in visited if title in row[1]] == []


# ---- the chat ----

ADA = "Hello, my name is Ada"
WHAT = "What did I say?"
CHATS = "**/api/v1/sessions/*/chat"


def _alert(page: Any) -> Any:
    return page.locator("#reply-problem")


def _retry_send(page: Any) -> Any:
    return page.get_by_role("button", name="Retry", exact=True)


def _exchange(second: str) -> list[tuple[str, str]]:
    """The conversation after ADA's pair and a second message's reply (the stand-in's knows ADA's)."""
    return [("You", ADA), ("Assistant", _said(ADA)), ("You", second), ("Assistant", _said(second, ADA))]


def _as_shown(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [({"user": "You", "assistant": "Assistant"}[m["role"]], m["content"]) for m in messages]


def _send_unanswered(
    page: Any, page_stack: LocalStack, stored: dict[str, Any], command: str
) -> list[dict[str, Any]]:
    """Sends a message the stand-in fails to answer: the page says so and retries nothing, and the
    service holds the message without a reply. Returns what it holds."""
    page.get_by_label("Message", exact=True).fill(command)
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("alert").filter(has_text="The assistant has not replied").wait_for()
    held = _held(page_stack, stored)
    assert [m["role"] for m in held] == ["user", "assistant", "user"]  # the message waits for its reply
    return held


def _retry_until_answered(
    page: Any, page_stack: LocalStack, stored: dict[str, Any], command: str
) -> list[dict[str, Any]]:
    """Retry: the reply is shown, the alert and the button go, and the service holds the message and
    its reply once each. Returns what it holds."""
    _retry_send(page).click()
    _conversation(page).locator(REPLY, has_text=command).wait_for()
    assert _entries(page) == _exchange(command)
    assert _alert(page).inner_text() == ""
    assert not _retry_send(page).is_visible()
    messages = _held(page_stack, stored)
    assert _as_shown(messages) == _exchange(command)  # exactly one reply stored, and the message once
    return messages


def test_a_chat_through_the_page_and_a_reload_shows_both_pairs(
    page: Any, page_stack: LocalStack, artifacts: Path
) -> None:
    stored = _stored(page) or {}

    _send(page, ADA)
    _send(page, WHAT)
    _attach(page, "notes.txt", b"Questions for Tuesday\n" * 50)

    pairs = _exchange(WHAT)
    assert _entries(page) == pairs
    # the reply is the assistant's to assistive technology too: its list item's text starts with the role
    replies = _conversation(page).get_by_role("listitem").filter(has_text="Assistant")
    assert replies.count() == 2
    assert replies.first.inner_text().startswith("Assistant")
    assert page.get_by_role("status").filter(has_text="replying").count() == 0
    assert page.get_by_role("button", name="Send", exact=True).is_enabled()

    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")

    assert _entries(page) == pairs
    assert _stored(page) == stored
    assert _as_shown(_held(page_stack, stored)) == pairs
    assert _file_rows(page) == [("Text file · 1.1 KB", "stored", True)]
    # the README's screenshot (docs/browser-page.png): the exchanges and the stored file, after a reload
    page.screenshot(path=str(artifacts / "chat.png"), full_page=True)


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("/stand-in throttle", "busy just now"),
        ("/stand-in timeout", "took too long"),
        ("/stand-in error", "unavailable just now"),
    ],
)
def test_a_reply_that_failed_shows_an_alert_and_retry_completes_the_pair(
    page: Any, page_stack: LocalStack, command: str, says: str
) -> None:
    stored = _stored(page) or {}
    _send(page, ADA)
    chats: list[str] = []
    page.on("request", lambda r: chats.append(r.post_data or "") if r.url.endswith("/chat") else None)

    _send_unanswered(page, page_stack, stored, command)
    assert says in _alert(page).inner_text()
    assert _retry_send(page).is_visible()
    assert _entries(page)[-1] == ("You", command)  # no reply shown, and the message marked
    assert "No reply yet" in _conversation(page).locator("li.user.failed").inner_text()
    assert page.get_by_role("button", name="Send", exact=True).is_enabled()

    messages = _retry_until_answered(page, page_stack, stored, command)
    assert _conversation(page).locator("li.failed").count() == 0
    assert len({json.loads(c)["message_id"] for c in chats}) == 1  # the retry sent the same message_id
    assert len(chats) == 2
    assert messages[2]["message_id"] == json.loads(chats[0])["message_id"]

    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")
    assert [content for _, content in _entries(page)] == [m["content"] for m in messages]


def test_send_waits_while_the_reply_is_made(page: Any, page_stack: LocalStack) -> None:
    """While the chat is on its way (held here), the status says the assistant is replying and Send
    (the button, and Enter) sends nothing more; the reply, once it comes, ends both."""
    held: list[Any] = []

    def hold(route: Any) -> None:  # (Playwright takes a function here, not a bound builtin like append)
        held.append(route)

    page.route(CHATS, hold)
    send = page.get_by_role("button", name="Send", exact=True)
    box = page.get_by_label("Message", exact=True)

    box.fill("Are you there?")
    send.click()

    page.get_by_role("status").filter(has_text="The assistant is replying").wait_for()
    while not held:
        page.wait_for_timeout(20)
    assert send.is_disabled()
    assert _conversation(page).locator("li.user.pending .content").inner_text() == "Are you there?"
    box.fill("And another thing")  # typing goes on; sending waits
    box.press("Enter")
    page.wait_for_timeout(300)
    assert len(held) == 1
    assert box.input_value() == "And another thing"
    assert _texts(page) == ["Are you there?"]

    held[0].continue_()

    _conversation(page).locator(REPLY, has_text="Are you there?").wait_for()
    assert page.get_by_role("status").filter(has_text="replying").count() == 0
    assert send.is_enabled()
    page.unroute(CHATS)
    send.click()
    _conversation(page).locator(REPLY, has_text="And another thing").wait_for()
    assert _entries(page) == [
        ("You", "Are you there?"),
        ("Assistant", _said("Are you there?")),
        ("You", "And another thing"),
        ("Assistant", _said("And another thing", "Are you there?")),
    ]


# ---- the page as a person reads it: files, upload feedback, local times, names, the hint ----

LETTER = b"a letter from the landlord\n" * 40  # 1,080 bytes: "1.1 KB"
PNG = base64.b64decode(  # one pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TOKYO = ZoneInfo("Asia/Tokyo")
WHERE = "PNG images, JPEG images, WebP images, PDF documents, or text files"  # AllowedUploadTypes' default
S3_POSTS = "**/chatvault-local-uploadsbucket*"


def _open(browser: Any, stack: LocalStack, **options: Any) -> tuple[Any, Any]:
    """A browser context of its own (a time zone, a touch screen), on the page, its session started."""
    context = browser.new_context(**{"viewport": {"width": 900, "height": 900}, **options})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    opened.goto(f"{stack.api}/")
    opened.wait_for_selector("body[data-session-ready=true]")
    return context, opened


def _reload(page: Any) -> None:
    page.reload()
    page.wait_for_selector("body[data-session-ready=true]")


def _service_writes(stack: LocalStack, sid: str, role: str, content: str) -> None:
    """The bot's back end appends a message (SigV4 with the local stack's credentials)."""
    url = f"{stack.api}/api/v1/service/sessions/{sid}/messages"
    data = json.dumps({"role": role, "content": content}).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    answer = requests.post(url, data=data, headers=dict(request.headers.items()), timeout=10)
    assert answer.status_code == 201, answer.text


def _clock(iso: str, zone: ZoneInfo) -> str:
    """A service time (UTC) as "HH:MM" in `zone`."""
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%H:%M")


def test_files_are_listed_after_a_reload_and_download_what_was_stored(
    page: Any, page_stack: LocalStack
) -> None:
    stored = _stored(page) or {}
    _attach(page, "letter.txt", LETTER)
    _attach(page, "scan.png", PNG, mime="image/png")
    # a file whose upload was asked for and never sent: the service lists it as pending
    form = requests.post(
        f"{page_stack.api}/api/v1/sessions/{stored['session_id']}/uploads",
        headers={"X-Session-Token": stored["session_token"]},
        json={"filename": "never-sent.pdf", "content_type": "application/pdf", "size": 2_000_000},
        timeout=10,
    )
    assert form.status_code == 201
    assert _file_rows(page) == [
        ("Text file · 1.1 KB", "stored", True),
        (f"PNG image · {len(PNG)} bytes", "stored", True),
    ]

    _reload(page)

    listed = _server(page_stack, stored, "/uploads").json()["items"]
    assert len(listed) == 3
    assert _file_rows(page) == [  # oldest first
        ("Text file · 1.1 KB", "stored", True),
        (f"PNG image · {len(PNG)} bytes", "stored", True),
        ("PDF document · 1.9 MB", "not received", False),  # pending: its declared size, no link
    ]
    html = page.content()
    assert "letter.txt" not in html  # names are never stored, so never shown after a reload
    assert "scan.png" not in html
    for name, body in (("Text file", LETTER), ("PNG image", PNG)):
        item = _files(page).get_by_role("listitem").filter(has_text=name)
        with page.expect_download() as started:
            item.get_by_role("link", name="Download").click()
        download = started.value
        assert Path(download.path()).read_bytes() == body
        fetched = requests.get(download.url, timeout=10)  # the link the page fetched, itself
        assert fetched.status_code == 200
        assert fetched.content == body
    assert page.url == f"{page_stack.api}/"  # the page stays: the file is an attachment
    assert _texts(page) == []
    assert "no longer available" not in _notices(page)


def test_the_progress_bar_shows_while_a_file_is_sent_and_hides_after_it_is_stored_or_not(
    page: Any, page_stack: LocalStack
) -> None:
    progress = page.locator("#upload-progress")
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    assert progress.is_hidden()
    page.route(S3_POSTS, hold)
    page.get_by_label("Attach a file", exact=True).set_input_files(
        {"name": "letter.txt", "mimeType": "text/plain", "buffer": LETTER}
    )
    while not held:
        page.wait_for_timeout(20)
    assert progress.is_visible()  # on its way to the bucket
    held.pop().continue_()
    page.locator("#uploads li:last-child[data-status]").wait_for()
    assert _file_rows(page) == [("Text file · 1.1 KB", "stored", True)]
    assert progress.is_hidden()

    page.get_by_label("Attach a file", exact=True).set_input_files(
        {"name": "again.txt", "mimeType": "text/plain", "buffer": LETTER}
    )
    while not held:
        page.wait_for_timeout(20)
    assert progress.is_visible()
    held.pop().abort()  # the connection to the bucket fails
    page.get_by_role("alert").filter(has_text="not stored").wait_for()
    assert progress.is_hidden()
    assert page.locator("#uploads li").last.get_attribute("data-status") == "failed"
    assert _file_rows(page)[-1] == ("Text file · 1.1 KB", "not stored", False)


def test_a_refused_type_is_explained_with_the_types_that_can_be_attached(
    page: Any, page_stack: LocalStack
) -> None:
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/uploads") else None)

    page.get_by_label("Attach a file", exact=True).set_input_files(
        {"name": "archive.zip", "mimeType": "application/zip", "buffer": b"PK\x05\x06" + bytes(18)}
    )

    page.get_by_role("alert").filter(has_text="cannot be attached").wait_for()
    said = page.locator("#problem").inner_text()
    assert said == f"This type of file cannot be attached. You can attach {WHERE}."
    assert answers == [422]  # the service refused it
    for raw in ("validation_failed", "body.", "422", "application/", "image/", "must be one of"):
        assert raw not in _notices(page)
    assert _files(page).get_by_role("listitem").count() == 0  # nothing was stored, nothing is listed
    assert page.locator("#upload-progress").is_hidden()
    accepted = page.get_by_label("Attach a file", exact=True).get_attribute("accept")
    assert accepted == "image/png,image/jpeg,image/webp,application/pdf,text/plain"


def test_a_refused_type_names_the_types_of_the_deployment(browser: Any, tmp_path: Path) -> None:
    """The types come from the deployment (its OpenAPI document, narrowed to AllowedUploadTypes)."""
    types = "AllowedUploadTypes=application/pdf,text/plain"
    with local_stack(tmp_path, f"{types} {UNLIMITED}") as narrowed:
        context, page = _open(browser, narrowed)
        try:
            page.get_by_label("Attach a file", exact=True).set_input_files(
                {"name": "photo.png", "mimeType": "image/png", "buffer": PNG}
            )
            page.get_by_role("alert").filter(has_text="cannot be attached").wait_for()
            said = page.locator("#problem").inner_text()
            assert said == "This type of file cannot be attached. You can attach PDF documents or text files."
            assert (
                page.get_by_label("Attach a file", exact=True).get_attribute("accept")
                == "application/pdf,text/plain"
            )
        finally:
            context.close()


def test_times_are_shown_in_the_persons_time_zone(browser: Any, page_stack: LocalStack) -> None:
    context, page = _open(browser, page_stack, timezone_id="Asia/Tokyo", locale="en-GB")
    try:
        stored = _stored(page) or {}
        _send(page, ADA)
        _attach(page, "letter.txt", LETTER)
        _reload(page)

        messages = _held(page_stack, stored)
        shown = _conversation(page).locator("li time")
        assert shown.count() == 2
        for time_element, message in zip(shown.all(), messages, strict=True):
            assert time_element.get_attribute("datetime") == message["created_at"]
            text = time_element.inner_text()
            assert _clock(message["created_at"], TOKYO) in text, text
            assert _clock(message["created_at"], ZoneInfo("UTC")) not in text  # 9 hours apart
        (upload,) = _server(page_stack, stored, "/uploads").json()["items"]
        added = _files(page).locator("time").inner_text()
        assert added.startswith("added ")
        assert _clock(upload["created_at"], TOKYO) in added

        page.get_by_role("button", name="Erase this conversation", exact=True).click()
        with page.expect_response(lambda r: r.request.method == "DELETE") as erased:
            page.get_by_role("dialog").get_by_role("button", name="Erase everything").click()
        deleted_at = erased.value.json()["deleted_at"]
        page.get_by_role("status").filter(has_text="Erased at").wait_for()
        said = page.locator("#notice").inner_text()
        assert f"Erased at {_clock(deleted_at, TOKYO)}: 2 messages and 1 file." in said, said
        assert deleted_at not in said
    finally:
        context.close()


def test_every_role_is_shown_by_name(page: Any, page_stack: LocalStack) -> None:
    """The bot's back end may write system and tool messages (the service writer): each is named."""
    stored = _stored(page) or {}
    _send(page, ADA)
    _service_writes(page_stack, stored["session_id"], "system", "A volunteer joins at six.")
    _service_writes(page_stack, stored["session_id"], "tool", "Opening hours: 9 to 17.")

    _reload(page)

    assert _entries(page) == [
        ("You", ADA),
        ("Assistant", _said(ADA)),
        ("System", "A volunteer joins at six."),
        ("Tool", "Opening hours: 9 to 17."),
    ]
    assert "No reply yet" not in _conversation(page).inner_text()


def test_the_page_has_an_icon_and_asks_for_no_missing_file(browser: Any, page_stack: LocalStack) -> None:
    """In a browser of its own: a browser remembers an icon that failed, and asks for it only once."""
    own = browser.browser_type.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
    context = own.new_context()
    page = context.new_page()
    failures: list[str] = []
    page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.goto(f"{page_stack.api}/")
        page.wait_for_selector("body[data-session-ready=true]")
        page.wait_for_timeout(1500)  # the browser asks for /favicon.ico after the page has loaded
        assert failures == []
        icon = page.evaluate(
            """() => new Promise((resolve) => {
                 const image = new Image();
                 image.onload = () => resolve(image.naturalWidth);
                 image.onerror = () => resolve(0);
                 image.src = document.querySelector("link[rel=icon]").href;
               })"""
        )
        assert icon > 0
    finally:
        own.close()


def test_the_esc_hint_is_shown_with_a_keyboard_and_not_on_a_touch_screen(
    browser: Any, page_stack: LocalStack
) -> None:
    hint = "Press Esc twice"
    desktop, page = _open(browser, page_stack)
    try:
        assert page.get_by_text(hint).is_visible()
    finally:
        desktop.close()
    phone, page = _open(
        browser, page_stack, has_touch=True, is_mobile=True, viewport={"width": 390, "height": 844}
    )
    try:
        assert page.get_by_text(hint).is_hidden()
        assert page.get_by_role("button", name="Quick exit").is_visible()  # the way out on a touch screen
    finally:
        phone.close()


def test_a_message_left_without_reply_is_retried_after_a_reload(page: Any, page_stack: LocalStack) -> None:
    stored = _stored(page) or {}
    command = "/stand-in throttle"
    _send(page, ADA)
    held = _send_unanswered(page, page_stack, stored, command)

    _reload(page)

    assert _entries(page) == [("You", ADA), ("Assistant", _said(ADA)), ("You", command)]
    waiting = _conversation(page).locator("li.user").last
    assert "No reply yet" in waiting.inner_text()
    assert _alert(page).inner_text().startswith("The assistant has not replied.")
    chats: list[str] = []
    page.on("request", lambda r: chats.append(r.post_data or "") if r.url.endswith("/chat") else None)

    _retry_until_answered(page, page_stack, stored, command)
    assert [json.loads(c)["message_id"] for c in chats] == [held[2]["message_id"]]  # the stored message's id
    _reload(page)
    assert not _retry_send(page).is_visible()
    assert "No reply yet" not in _conversation(page).inner_text()


# ---- the reply streams (on a stack of its own whose stand-in writes a word every SLOW_WORD_MS) ----

REPLYING = "The assistant is replying…"
REPLIED = "The assistant has replied."
STOPPED = "The reply was stopped."
# Samples, every 100 ms in the page, the newest assistant message's text and what assistive technology
# is told meanwhile: the status, and whether the text grows inside a live region that is not marked busy.
SAMPLER = """() => {
  window.samples = [];
  window.sampler = setInterval(() => {
    const replies = document.querySelectorAll('#log li.assistant');
    const bubble = replies[replies.length - 1];
    const live = bubble && bubble.closest('[aria-live]');
    window.samples.push({
      text: bubble ? bubble.querySelector('.content').textContent : null,
      status: document.getElementById('replying').textContent,
      heard: Boolean(live) && !bubble.closest('[aria-busy=true]'),
      stop: Boolean(document.querySelector('#stop:not([hidden])')),
      send: document.getElementById('send').disabled,
    });
  }, 100);
}"""


def _words(count: int, tag: str) -> str:
    """A message whose stand-in reply is count + 2 words long (a word each SLOW_WORD_MS)."""
    return " ".join(f"{tag}{i}" for i in range(count))


def _replies(stack: LocalStack, stored: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in _held(stack, stored) if m["role"] == "assistant"]


def _stop(page: Any) -> Any:
    return page.get_by_role("button", name="Stop", exact=True)


def _status(page: Any) -> Any:
    return page.locator("#replying")


def _writing(page: Any) -> Any:
    """The reply being written, once some of it is shown."""
    bubble = _conversation(page).locator("li.assistant .content").last
    bubble.filter(has_text="You said").wait_for()
    return bubble


def test_the_reply_grows_as_it_is_written_and_ends_as_stored(slow_page: Any, slow_stack: LocalStack) -> None:
    page = slow_page
    stored = _stored(page) or {}
    text = _words(24, "grow")
    page.evaluate(SAMPLER)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    page.get_by_role("status").filter(has_text=REPLIED).wait_for(timeout=30_000)
    page.wait_for_timeout(250)  # a sample or two of the reply as it stays
    samples = page.evaluate("clearInterval(window.sampler) || window.samples")

    (reply,) = _replies(slow_stack, stored)
    assert reply["content"] == _said(text)
    final = _entries(page)[-1]
    assert final == ("Assistant", reply["content"])  # what stays shown is the stored reply
    growing = [s for s in samples if s["text"] is not None and s["status"] == REPLYING]
    shown: list[str] = []
    for sample in growing:
        if not shown or sample["text"] != shown[-1]:
            shown.append(sample["text"])
    assert len(shown) >= 3, samples  # seen growing, several times, before it was complete
    assert len(shown[0]) < len(reply["content"])
    for before, later in itertools.pairwise(shown):
        assert later.startswith(before)
        assert len(later) > len(before)
    assert all(reply["content"].startswith(s) for s in shown)
    # meanwhile: Send waits, Stop is offered, and the growing text is not read out piece by piece
    assert all(s["send"] and s["stop"] for s in growing)
    assert not any(s["heard"] for s in growing)
    assert not any(reply["content"][:20] in s["status"] for s in samples)
    # once complete: the status says so (once), the reply can be read, Send works again
    assert _status(page).inner_text() == REPLIED
    assert _conversation(page).get_attribute("aria-busy") is None
    assert _conversation(page).locator("[aria-busy]").count() == 0
    assert _stop(page).count() == 0
    assert page.get_by_role("button", name="Send", exact=True).is_enabled()


def test_stop_keeps_the_reply_as_far_as_it_was_written(slow_page: Any, slow_stack: LocalStack) -> None:
    page = slow_page
    stored = _stored(page) or {}
    text = _words(60, "stop")
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    _writing(page)
    assert page.get_by_role("status").filter(has_text=REPLYING).count() == 1

    _stop(page).click()

    stopped = _conversation(page).locator("li.assistant", has_text="Stopped")
    stopped.wait_for(timeout=10_000)
    (reply,) = _replies(slow_stack, stored)
    assert reply["metadata"]["attributes"]["stop_reason"] == "stopped"
    full = _said(text)
    assert full.startswith(reply["content"])
    assert 0 < len(reply["content"]) < len(full)
    assert stopped.locator(".content").inner_text() == reply["content"]  # shown as stored
    assert _status(page).inner_text() == STOPPED
    assert _stop(page).count() == 0
    send = page.get_by_role("button", name="Send", exact=True)
    assert send.is_enabled()
    assert page.get_by_role("alert").filter(has_text="not replied").count() == 0

    _send(page, "and after that?")  # Send works again: the next exchange completes

    page.get_by_role("status").filter(has_text=REPLIED).wait_for(timeout=30_000)
    assert [who for who, _ in _entries(page)] == ["You", "Assistant", "You", "Assistant"]
    _reload(page)
    assert "Stopped" in _conversation(page).get_by_role("listitem").nth(1).inner_text()  # and after a reload


@pytest.mark.parametrize("away", ["reload", "close"])
def test_a_reply_being_made_when_the_page_opens_is_shown_as_such_then_picked_up(
    slow_page: Any, slow_stack: LocalStack, away: str
) -> None:
    page = slow_page
    stored = _stored(page) or {}
    text = _words(60, away)
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    _writing(page)

    if away == "reload":
        page.reload()
    else:  # the tab is closed mid-reply, and the page opened again in another (the same browser profile)
        context = page.context
        page.close()
        page = context.new_page()
        page.goto(f"{slow_stack.api}/")
    page.wait_for_selector("body[data-session-ready=true]")

    assert _server(slow_stack, stored).json()["replying"] is True  # still being made, as the page says:
    assert _status(page).inner_text() == REPLYING
    assert page.get_by_role("button", name="Send", exact=True).is_disabled()
    assert _entries(page) == [("You", text)]
    assert "No reply yet" not in _conversation(page).inner_text()
    assert page.get_by_role("alert").filter(has_text="not replied").count() == 0

    page.get_by_role("status").filter(has_text=REPLIED).wait_for(timeout=30_000)

    messages = _held(slow_stack, stored)
    assert [(m["role"], m["content"]) for m in messages] == [("user", text), ("assistant", _said(text))]
    assert _entries(page) == [("You", text), ("Assistant", _said(text))]  # complete, as stored
    assert page.get_by_role("button", name="Send", exact=True).is_enabled()
    assert _conversation(page).locator("li.pending, li.failed").count() == 0
    _send(page, "still there?")
