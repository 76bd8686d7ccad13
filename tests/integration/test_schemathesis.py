"""Schemathesis against the local stack, driven by the document the service serves: every check, every
phase (examples, coverage, fuzzing, stateful), fixed seed. No 5xx, no status, header, content type or
body that contradicts the document, schema-valid requests accepted, schema-invalid ones refused, 405
for undeclared methods, a created session reachable through the document's links and gone after its
DELETE.

Two runs, because pinned parameters apply to every request of a run, links included:
- examples, coverage and fuzzing, with each session route pinned to a real session of its own (id and
  token), so that generated requests reach past 404 and one route's PATCH to `ended` or DELETE does
  not turn another's into 409s or 404s;
- stateful, with nothing pinned: every id and token comes from a created session through the links.

Any warning fails a run (missing test data, say), with two allowances, per operation:
- a list's `cursor` is opaque and sealed, so no generator can make a valid one; a generated cursor is
  400 `invalid_cursor` (the contract), which positive_data_acceptance is told to expect there;
- `GET /api/v1/sessions` and `DELETE /api/v1/sessions` are 404 in anonymous mode by contract, and a
  pinned DELETE erases its session at its first success: their "missing test data" warnings are
  expected;
- an upload is 404 until its file reaches storage, which no generated request sends: the pinned run
  pins a stored upload, and the stateful run expects the warning for `GET .../uploads/{upload_id}`;
- feedback needs a reply and a shared conversation a share link, which no generated request makes:
  the pinned run pins a reply's message id and a live link, and the stateful run expects the warning
  for the routes that name a message or a link.
The service writer's routes are left out: schemathesis cannot sign requests with SigV4, so every one
would be the gateway's 403. test_service_writer.py and test_python_client.py cover them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.local_stack import ROOT, LocalStack

pytestmark = pytest.mark.http
# schemathesis' defaults for positive_data_acceptance, plus 400 for an opaque cursor
LIST_STATUSES = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]


def _config(stack: LocalStack, pinned: bool) -> str:
    document = requests.get(f"{stack.api}/api/v1/openapi.json", timeout=10).json()
    lines = ["warnings = { fail-on = true }"]
    for path, item in sorted(document["paths"].items()):
        for method, operation in sorted(item.items()):
            names = {p["name"] for p in operation.get("parameters", [])}
            section = [f'[[operations]]\ninclude-name = "{method.upper()} {path}"']
            if path.startswith("/api/v1/service/"):
                lines.append(section[0] + "\nenabled = false")  # SigV4: see the module's docstring
                continue
            if (
                (path == "/api/v1/sessions" and method in ("get", "delete"))
                or (pinned and method == "delete")
                or (not pinned and names & {"upload_id", "message_id", "share_id"})
            ):
                section.append("warnings = false")
            if "cursor" in names:
                section.append(
                    f"checks.positive_data_acceptance.expected-statuses = {json.dumps(LIST_STATUSES)}"
                )
            if pinned and "session_id" in names:
                session = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
                upload = (
                    f', "path.upload_id" = "{_stored_upload(stack, session)}"' if "upload_id" in names else ""
                )
                reply = f', "path.message_id" = "{_reply(stack, session)}"' if "message_id" in names else ""
                section.append(
                    f'parameters = {{ "path.session_id" = "{session["session_id"]}", '
                    f'"header.X-Session-Token" = "{session["session_token"]}"{upload}{reply} }}'
                )
            elif pinned and "share_id" in names:
                session = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
                section.append(f'parameters = {{ "path.share_id" = "{_share(stack, session)}" }}')
            if len(section) > 1:
                lines.append("\n".join(section))
    return "\n\n".join(lines) + "\n"


def _reply(stack: LocalStack, session: dict[str, str]) -> str:
    """The message id of a reply in the session (feedback is given on replies)."""
    chat = requests.post(
        f"{stack.api}/api/v1/sessions/{session['session_id']}/chat",
        headers={"X-Session-Token": session["session_token"]},
        json={"content": "Hello"},
        timeout=30,
    )
    assert chat.status_code == 201, chat.text
    return str(chat.json()["reply"]["message_id"])


def _share(stack: LocalStack, session: dict[str, str]) -> str:
    """A live share link of the session."""
    made = requests.post(
        f"{stack.api}/api/v1/sessions/{session['session_id']}/shares",
        headers={"X-Session-Token": session["session_token"]},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["share_id"])


def _stored_upload(stack: LocalStack, session: dict[str, str]) -> str:
    """An upload of the session whose file is in storage (the bucket's event has confirmed it)."""
    url = f"{stack.api}/api/v1/sessions/{session['session_id']}/uploads"
    auth = {"X-Session-Token": session["session_token"]}
    form = requests.post(
        url, headers=auth, json={"filename": "a.txt", "content_type": "text/plain", "size": 2}, timeout=10
    ).json()
    requests.post(
        form["url"], data=form["fields"], files={"file": ("a.txt", b"hi", "text/plain")}, timeout=10
    )
    for _ in range(100):
        listed = requests.get(url, headers=auth, timeout=10).json()["items"]
        if listed and listed[0]["status"] == "stored":
            return str(form["upload_id"])
        time.sleep(0.2)
    raise AssertionError("the upload was never confirmed")


@pytest.mark.parametrize(
    ("phases", "pinned"),
    [("examples,coverage,fuzzing", True), ("stateful", False)],
    ids=["pinned", "stateful"],
)
def test_schemathesis_finds_nothing(stack: LocalStack, tmp_path: Path, phases: str, pinned: bool) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(stack, pinned))
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(schemathesis),
            "--config-file",
            str(config),
            "run",
            f"{stack.api}/api/v1/openapi.json",
            "--checks",
            "all",
            # response times belong to the benchmarks: the local stack's, on a loaded two-core machine
            # (a function's workers start on demand), say little about the service's; this catches a
            # request that hangs, not one that waited for a cold worker
            "--max-response-time",
            "60",
            "--max-examples",
            "12",
            "--seed",
            "20261122",
            "--phases",
            phases,
            "--generation-database",
            "none",
            "--workers",
            "2",
            "--no-color",
            "--request-timeout",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = result.stdout[-8000:]
    assert result.returncode == 0, summary
    assert "generated" in summary
    for phase in phases.split(","):
        assert f"✅ {phase.capitalize()}" in summary, summary
