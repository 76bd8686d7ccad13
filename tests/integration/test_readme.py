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


# Blocks that need an AWS account (deploying, the bot's deploy too, a deployed user pool, hosting the
# page, restoring a backup) or are the two commands themselves (make test is what runs this): every
# other block runs here.
NOT_RUN_HERE = ("make dev    #", "sam deploy", "aws cognito-idp", "aws s3 sync", "aws dynamodb")


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
    # the two commands, the user pool's steps, deploying the stack and the example bot, hosting the
    # page, restoring a backup
    assert len(_blocks()) - len(runnable) == 6
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


def test_the_hosting_steps_make_a_page_that_calls_the_deployed_api(tmp_path: Path) -> None:
    """The README's steps for hosting the page, but for the two that need AWS (reading the stack's
    ApiUrl, uploading): the copy holds the page and the client it imports, and names the API base."""
    (block,) = [b for b in _blocks() if "aws s3 sync" in b]
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/v1"
    script, found = re.subn(
        r"^API=\$\(aws .*?\)/api/v1$", f"API={api}", block, flags=re.DOTALL | re.MULTILINE
    )
    assert found == 1
    script = "\n".join(line for line in script.splitlines() if not line.startswith("aws ")) + '\necho "$SITE"'
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    site = Path(done.stdout.strip())
    assert site.parent == tmp_path  # a temporary directory, nothing left in the repository
    assert {p.name for p in site.iterdir()} >= {"index.html", "app.js", "style.css", "chatvault.js"}
    page = (site / "index.html").read_text()
    assert f'data-api="{api}"' in page
    unset = re.compile(r'data-api="[^"]*"')  # and nothing else of the page changed
    assert unset.sub("", page) == unset.sub("", (ROOT / "web/index.html").read_text())
    shared = (site / "shared.html").read_text()  # the shared conversation's page calls it too
    assert f'data-api="{api}"' in shared
    assert unset.sub("", shared) == unset.sub("", (ROOT / "web/shared.html").read_text())
    assert 'from "./chatvault.js"' in (site / "app.js").read_text()  # the client it imports, beside it
