"""The example bot back end (examples/echo_bot) against `make dev`'s stack: given Lambda's SQS event of
the message events, it reads the history and writes the assistant's reply through the service writer,
once per user message. (Subscribed to the queue, under `make dev BOT=echo`: test_bot_events.py.)"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from chatvault_client import ChatVault, Message

from examples.echo_bot import bot
from tests.integration.local_stack import LocalStack, table_items

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "chatvault-local-MessageEventsQueue.fifo"


@pytest.fixture
def local_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def told(message: Message, position: str = "1") -> dict[str, str]:
    """The message event the service sends for `message` (MessageEventsQueue's body)."""
    return {
        "session_id": message.session_id,
        "message_id": message.message_id,
        "position": position,
        "role": message.role,
        "created_at": message.model_dump(mode="json")["created_at"],
    }


def sqs_event(*bodies: object) -> dict[str, Any]:
    """Lambda's SQS event of the bot's subscription, one record per body."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"MessageGroupId": "group", "ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


@pytest.mark.usefixtures("local_credentials")
def test_the_bot_answers_a_user_message_once(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    asked = user.append(created.session_id, "user", "is anyone there?")
    monkeypatch.setenv("CHATVAULT_API_URL", stack.api)

    first = bot.lambda_handler(sqs_event(told(asked)), None)
    second = bot.lambda_handler(sqs_event(told(asked)), None)  # the event delivered again

    assert first == second == {"batchItemFailures": []}
    history = list(user.messages(created.session_id))
    assert [(m.role, m.content) for m in history] == [
        ("user", "is anyone there?"),
        ("assistant", "(stand-in bot) You said: is anyone there?"),
    ]
    # the reply's id is derived from the user message: a duplicate event replays, stores nothing
    assert history[1].message_id == str(uuid.uuid5(bot.REPLY_NAMESPACE, asked.message_id))
    assert bot.answer(bot.client_from_environment(), created.session_id) is None  # the shell's: nothing new
    user.append(created.session_id, "user", "thanks")
    assert bot.answer(bot.client_from_environment(), created.session_id) is not None
    assert [m.role for m in user.messages(created.session_id)] == ["user", "assistant", "user", "assistant"]


@pytest.mark.usefixtures("local_credentials")
def test_each_event_is_answered_with_the_history_up_to_its_message(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two messages in a row, one batch: each gets its own reply, from the history until it (not the
    session's newest message); a reply event (the bot's own) is not answered."""
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    one = user.append(created.session_id, "user", "one")
    two = user.append(created.session_id, "user", "two")
    monkeypatch.setenv("CHATVAULT_API_URL", stack.api)

    assert bot.lambda_handler(sqs_event(told(one), told(two)), None) == {"batchItemFailures": []}
    replies = [m for m in user.messages(created.session_id) if m.role == "assistant"]
    assert [(m.message_id, m.content) for m in replies] == [
        (bot.reply_id(one.message_id), "(stand-in bot) You said: one"),
        (bot.reply_id(two.message_id), "(stand-in bot) You said: two"),
    ]
    assert bot.lambda_handler(sqs_event(told(replies[0])), None) == {"batchItemFailures": []}
    assert len(list(user.messages(created.session_id))) == 4


@pytest.mark.usefixtures("local_credentials")
def test_a_failed_event_fails_the_rest_of_its_batch_and_nothing_after_it_is_answered(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FIFO: the records after a failed one may be the same session's later messages, which must not
    be answered before it. The failed record and every one after it are reported; the queue redelivers."""
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    one = user.append(created.session_id, "user", "one")
    two = user.append(created.session_id, "user", "two")
    monkeypatch.setenv("CHATVAULT_API_URL", stack.api)
    event = sqs_event(told(one), "not an event", told(two))

    result = bot.lambda_handler(event, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][1:]]}
    assert [m.content for m in user.messages(created.session_id)][2:] == ["(stand-in bot) You said: one"]


@pytest.mark.usefixtures("local_credentials")
def test_an_erased_session_or_a_reply_stored_already_is_done_never_retried(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATVAULT_API_URL", stack.api)
    # the session erased before its event was answered: done, and nothing of it is written back
    erased = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(erased.session_token or "")
    gone = user.append(erased.session_id, "user", "forget me")
    user.delete_session(erased.session_id)
    assert bot.lambda_handler(sqs_event(told(gone)), None) == {"batchItemFailures": []}
    assert not [item for item in table_items(stack) if erased.session_id in json.dumps(item, default=repr)]

    # the reply stored already with another text (a model is not deterministic): a conflict, done
    created = ChatVault(stack.api).create_session()
    user = ChatVault(stack.api).with_token(created.session_token or "")
    asked = user.append(created.session_id, "user", "hello")
    bot.client_from_environment().append(
        created.session_id, "assistant", "an earlier answer", message_id=bot.reply_id(asked.message_id)
    )
    # the reply is in the history after the message: done without asking the model
    assert bot.answer_message(bot.client_from_environment(), created.session_id, asked.message_id) is None
    # even when the history read misses the reply (it reads the message's place): the append is a 409
    monkeypatch.setattr(bot, "history_until", lambda *_: [asked])
    assert bot.lambda_handler(sqs_event(told(asked)), None) == {"batchItemFailures": []}
    assert [m.content for m in user.messages(created.session_id)] == ["hello", "an earlier answer"]


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
