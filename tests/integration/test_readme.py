"""The README's API examples run as written, in order, in one shell, against `make dev` (the local
stack on its own ports instead of 3000), and answer what the README says they answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import requests

from tests.integration.local_stack import LocalStack, table_items

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _example() -> str:
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL) if "API=http" in b]
    return block


def _answers(output: str) -> list[Any]:
    """Every JSON value the examples printed, in order."""
    decoder, answers, at = json.JSONDecoder(), [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(output, at)
        answers.append(value)
    return answers


def test_the_readme_examples_run_in_order(stack: LocalStack, tmp_path: Path) -> None:
    script = _example().replace("http://127.0.0.1:3000", stack.api)
    assert script != _example()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing left where a newcomer runs them (the repository)
    answers = _answers(done.stdout)
    (
        created,
        got,
        renamed,
        message,
        forged,
        reply,
        page,
        chat,
        form,
        posted,
        ended,
        receipt,
        gone,
        gone_again,
    ) = answers

    sid = created["session_id"]
    assert created["title"] == "Onboarding"
    assert created["session_token"]
    assert got["session_id"] == sid
    assert renamed["title"] == "Renamed"
    assert message["content"] == "Hello"
    assert forged["error"]["code"] == "role_not_allowed"
    assert reply["role"] == "assistant"
    assert [m["content"] for m in page["items"]] == ["Hi!", "Hello"]
    assert chat["message"]["content"] == "What did I say?"
    assert chat["reply"]["content"] == 'You said: "What did I say?". Earlier you said: "Hello"'

    assert form["key"] == f"uploads/{sid}/{form['upload_id']}"
    assert form["max_bytes"] == len("hello, file\n")
    assert posted == 204
    assert ended["status"] == "ended"
    assert receipt["session_id"] == sid
    assert receipt["erased"] == {"messages": 4, "uploads": 1}
    assert gone["error"]["code"] == gone_again["error"]["code"] == "session_not_found"
    assert not [item for item in table_items(stack) if item.get("pk", {}).get("S") == sid]


# Blocks that need an AWS account (deploying, a deployed user pool) or are the two commands themselves
# (make test is what runs this): every other block runs here.
NOT_RUN_HERE = ("make dev    #", "sam deploy", "aws cognito-idp")  # (the example bot's deploy too)


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)


def _make(line: str, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATVAULT_DEV_STATE": str(stack.state)}
    for name in ("AWS_ENDPOINT_URL", "TABLE_NAME", "AUDIT_TABLE", "LIMITS_TABLE", "UPLOADS_BUCKET"):
        env.pop(name, None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_other_readme_block_runs_against_the_local_stack(stack: LocalStack) -> None:
    """`make invoke` and `make admin` as the README shows them; `<session_id>` is a session's id, as
    the text says (one created over HTTP, as in the API example)."""
    runnable = [b for b in _blocks() if not any(marker in b for marker in NOT_RUN_HERE)]
    # the two commands, the user pool's steps, deploying the stack and the example bot
    assert len(_blocks()) - len(runnable) == 4
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    ran = 0
    for block in runnable:
        if "API=http" in block:
            continue  # test_the_readme_examples_run_in_order
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if not command:
                continue
            command = command.replace("<session_id>", created["session_id"])
            command = command.replace("http://127.0.0.1:3000", stack.api)
            done = _make(command, stack)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            ran += 1
    assert ran >= 5
    # the last admin line erased the session: it is gone for its holder too
    gone = requests.get(
        f"{stack.api}/api/v1/sessions/{created['session_id']}",
        headers={"X-Session-Token": created["session_token"]},
        timeout=10,
    )
    assert gone.status_code == 404
