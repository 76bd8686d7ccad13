"""The README's API examples run as written, in order, in one shell, against `make dev` (the local
stack on its own ports instead of 3000), and answer what the README says they answer."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.local_stack import LocalStack, table_items

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


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
    created, got, renamed, message, page, form, posted, ended, receipt, gone, gone_again = _answers(
        done.stdout
    )

    sid = created["session_id"]
    assert created["title"] == "Onboarding"
    assert created["session_token"]
    assert got["session_id"] == sid
    assert renamed["title"] == "Renamed"
    assert message["content"] == "Hello"
    assert [m["content"] for m in page["items"]] == ["Hello"]
    assert form["key"] == f"uploads/{sid}/{form['upload_id']}"
    assert form["max_bytes"] == len("hello, file\n")
    assert posted == 204
    assert ended["status"] == "ended"
    assert receipt["session_id"] == sid
    assert receipt["erased"] == {"messages": 1, "uploads": 1}
    assert gone["error"]["code"] == gone_again["error"]["code"] == "session_not_found"
    assert not [item for item in table_items(stack) if item.get("pk", {}).get("S") == sid]
