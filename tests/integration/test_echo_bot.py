"""The example bot back end (examples/echo_bot) against `make dev`'s stack: it reads the history and
writes the assistant's reply through the service writer, once per user message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from chatvault_client import ChatVault

from examples.echo_bot import bot
from tests.integration.local_stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.mark.usefixtures("local_credentials")
def test_the_bot_answers_a_user_message_once(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    user.append(created.session_id, "user", "is anyone there?")
    monkeypatch.setenv("CHATVAULT_API_URL", stack.api)

    first = bot.lambda_handler({"session_id": created.session_id}, None)
    second = bot.lambda_handler({"session_id": created.session_id}, None)  # a retried invocation

    assert first["replied"] is True
    assert second == {"replied": False, "message_id": None}  # the newest message is the bot's now
    history = [(m.role, m.content) for m in user.messages(created.session_id)]
    assert history == [
        ("user", "is anyone there?"),
        ("assistant", "(stand-in bot) You said: is anyone there?"),
    ]
    # the reply's id is derived from the user message: a duplicate event replays, stores nothing
    replay = bot.answer(bot.client_from_environment(), created.session_id)
    assert replay is None
    user.append(created.session_id, "user", "thanks")
    assert bot.answer(bot.client_from_environment(), created.session_id) is not None
    assert [m.role for m in user.messages(created.session_id)] == ["user", "assistant", "user", "assistant"]


@pytest.mark.usefixtures("local_credentials")
def test_the_bot_runs_from_a_shell(stack: LocalStack) -> None:
    created = ChatVault(stack.api).create_session()
    ChatVault(stack.api).with_token(created.session_token or "").append(created.session_id, "user", "hi")
    ran = subprocess.run(
        [sys.executable, "-m", "examples.echo_bot.bot", "--api", stack.api, "--session", created.session_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "You said: hi" in ran.stdout


def test_the_examples_template_passes_cfn_lint() -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "examples/echo_bot/template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
