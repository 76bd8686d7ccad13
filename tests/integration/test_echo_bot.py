"""The example bot back end (examples/echo_bot) against `make dev`'s stack: it reads the history and
writes the assistant's reply through the service writer, once per user message."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
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
@pytest.mark.parametrize("base", ["", "/api/v1"], ids=["service URL", "API base"])
def test_the_bot_runs_from_a_shell(stack: LocalStack, base: str) -> None:
    """The README's command, given the service's URL or the API base the curl walkthrough uses."""
    created = ChatVault(stack.api).create_session()
    ChatVault(stack.api).with_token(created.session_token or "").append(created.session_id, "user", "hi")
    api = stack.api + base
    ran = subprocess.run(
        [sys.executable, "-m", "examples.echo_bot.bot", "--api", api, "--session", created.session_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "You said: hi" in ran.stdout
    # the printed reply's time is the contract's: UTC, milliseconds, Z (not pydantic's microseconds)
    printed = json.loads(ran.stdout)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", printed["created_at"])


def test_the_examples_template_passes_cfn_lint() -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "examples/echo_bot/template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


def test_make_dev_alone_installs_what_the_readmes_bot_command_needs() -> None:
    """`make dev` installs requirements.txt (and what it includes) only; the bot needs the client."""
    makefile = (ROOT / "Makefile").read_text()
    assert "$(BIN)/pip install --quiet -r requirements.txt" in makefile
    serving = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e ./clients/python[iam]" in serving


def _options(argv: list[str]) -> dict[str, str]:
    """A command's options, each with the word after it (for a flag such as --guided: the next option)."""
    return {word: after for word, after in zip(argv, [*argv[1:], ""], strict=True) if word.startswith("-")}


def test_the_readme_deploys_the_bot_as_its_own_stack_never_over_the_service() -> None:
    """`sam deploy` reads the samconfig.toml of the directory it runs in: from the repository root,
    the service's, whose stack name would replace the service with the bot. Every command the README
    shows for the bot names the bot's own config, its own stack and its own build directory."""
    readme = (ROOT / "README.md").read_text()
    (block,) = [
        b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL) if "echo_bot/template" in b
    ]
    commands = [shlex.split(line.split("  #")[0].replace("$PWD", str(ROOT))) for line in block.splitlines()]
    assert [c[:2] for c in commands] == [["sam", "build"], ["sam", "deploy"]]
    build, deploy = (_options(command) for command in commands)
    bot_config = ROOT / "examples/echo_bot/samconfig.toml"
    assert Path(build["--config-file"]) == Path(deploy["--config-file"]) == bot_config
    assert build["-t"] == "examples/echo_bot/template.yaml"
    build_dir = Path(build["--build-dir"])
    assert build_dir != Path(".aws-sam/build")  # the service's own build stays where it is
    assert Path(deploy["-t"]) == build_dir / "template.yaml"
    service = tomllib.loads((ROOT / "samconfig.toml").read_text())
    services = {
        env["global"]["parameters"]["stack_name"] for env in service.values() if isinstance(env, dict)
    }
    bot_stack = tomllib.loads(bot_config.read_text())["default"]["global"]["parameters"]["stack_name"]
    assert bot_stack not in services
