"""Headless Chromium (Debian's `chromium`, launched by path through Playwright for Python) against the
local stack (`make dev` on free ports), serving the demo page at `/`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_stack import LocalStack, local_stack

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# The page talks from 127.0.0.1 like every test: lift the per-client limits (as tests/integration does).
UNLIMITED = "CreateSessionRateLimit=100000 UploadRateLimit=100000 AppendRateLimit=60000"
# The streaming tests' stand-in writes a word every 120 ms (40 by default): a reply of a few dozen words
# streams for seconds, long enough to watch it grow, stop it, or reload the page in the middle of it.
SLOW_WORD_MS = 120
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """$CHROMIUM, else Debian's chromium: a missing browser is a clear failure, never a skip."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "The browser tests need Chromium: `apt-get install -y chromium` (Debian), or set CHROMIUM to a "
        "Chromium or Chrome binary. `make install` installs it when it runs as root with apt-get.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack of the tests' own, or with CHATVAULT_BROWSER_STACK=.dev-stack.json the `make dev`
    that is running (its per-client limits apply then: start it with PARAMETER_OVERRIDES lifting them)."""
    state = os.environ.get("CHATVAULT_BROWSER_STACK")
    if state:
        running = json.loads(Path(state).read_text())
        yield LocalStack(
            running["api"], running["moto"], int(running["moto"].rsplit(":", 1)[1]), Path(state), Path(state)
        )
        return
    with local_stack(tmp_path_factory.mktemp("browser"), UNLIMITED) as started:
        yield started


@pytest.fixture(scope="session")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack of its own whose stand-in streams slowly (SLOW_WORD_MS between words)."""
    env = {"STAND_IN_WORD_MS": str(SLOW_WORD_MS)}
    with local_stack(tmp_path_factory.mktemp("slow"), UNLIMITED, env=env) as started:
        yield started


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser tests need Playwright for Python: `make install` (requirements-test.txt)")
    path = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, page_stack: LocalStack) -> Iterator[Any]:
    """A fresh browser profile (empty localStorage) on the page, its session started."""
    with opened_page(browser, page_stack) as opened:
        yield opened


@pytest.fixture
def slow_page(browser: Any, slow_stack: LocalStack) -> Iterator[Any]:
    """As `page`, on the stack whose stand-in streams slowly."""
    with opened_page(browser, slow_stack) as opened:
        yield opened


@contextmanager
def opened_page(browser: Any, stack: LocalStack) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 900, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    console: list[str] = []  # printed when a test fails (pytest shows captured output)
    opened.on("console", lambda m: console.append(f"console {m.type}: {m.text}"))
    opened.on("pageerror", lambda e: console.append(f"page error: {e}"))
    opened.goto(f"{stack.api}/")
    try:
        opened.wait_for_selector("body[data-session-ready=true]")
        yield opened
    finally:
        print("\n".join(console))
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
