"""Through HTTP, as a user would: the local stack (`make dev`) with real requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
import requests

from chatvault.core.settings import get_settings
from tests.integration.local_stack import ROOT, LocalStack, local_stack, table_items

pytestmark = pytest.mark.http


def _error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()["error"]
    assert body["code"] == code
    assert body["message"]
    assert body["request_id"]


def test_session_lifecycle_over_http(stack: LocalStack) -> None:
    base = f"{stack.api}/api/v1/sessions"
    created = requests.post(base, json={"title": "Helpline", "metadata": {"lang": "en"}}, timeout=10)
    assert created.status_code == 201
    session = created.json()
    sid, token = session["session_id"], session["session_token"]
    url, auth = f"{base}/{sid}", {"X-Session-Token": token}

    got = requests.get(url, headers=auth, timeout=10)
    assert got.status_code == 200
    assert got.json()["title"] == "Helpline"
    _error(requests.get(url, timeout=10), 401, "token_required")
    _error(requests.get(url, headers={"X-Session-Token": "wrong"}, timeout=10), 404, "session_not_found")

    patched = requests.patch(url, headers=auth, json={"title": "Renamed"}, timeout=10)
    assert patched.status_code == 200
    assert requests.get(url, headers=auth, timeout=10).json()["title"] == "Renamed"

    ended = requests.patch(url, headers=auth, json={"status": "ended"}, timeout=10)
    assert ended.json()["status"] == "ended"
    _error(requests.patch(url, headers=auth, json={"title": "x"}, timeout=10), 409, "session_ended")
    assert requests.get(url, headers=auth, timeout=10).json()["status"] == "ended"

    deleted = requests.delete(url, headers=auth, timeout=10)
    assert deleted.status_code == 200
    assert deleted.json()["session_id"] == sid
    assert deleted.json()["erased"] == {"messages": 0, "uploads": 0}
    _error(requests.get(url, headers=auth, timeout=10), 404, "session_not_found")
    _error(requests.delete(url, headers=auth, timeout=10), 404, "session_not_found")
    assert not [i for i in table_items(stack) if sid in json.dumps(i, default=repr)]


def test_client_chosen_ids_and_bad_input_over_http(stack: LocalStack) -> None:
    base = f"{stack.api}/api/v1/sessions"
    sid = str(uuid.uuid4())
    assert requests.post(base, json={"session_id": sid}, timeout=10).status_code == 201
    _error(requests.post(base, json={"session_id": sid}, timeout=10), 409, "session_exists")
    _error(
        requests.get(f"{base}/not-a-uuid", headers={"X-Session-Token": "t"}, timeout=10),
        404,
        "session_not_found",
    )

    headers = {"Content-Type": "application/json"}
    _error(requests.post(base, data='{"title": ', headers=headers, timeout=10), 400, "invalid_json")
    unknown = requests.post(base, json={"title": "x", "nope": 1}, timeout=10)
    _error(unknown, 422, "validation_failed")
    assert unknown.json()["error"]["details"][0]["field"] == "body.nope"
    _error(requests.post(base, json={"title": "x" * 201}, timeout=10), 422, "validation_failed")
    _error(requests.post(base, json={"metadata": {"k": "v" * 513}}, timeout=10), 422, "validation_failed")
    _error(
        requests.post(base, json={"metadata": {str(i): "v" for i in range(17)}}, timeout=10),
        422,
        "validation_failed",
    )
    # one byte over the largest body the default settings accept (the stack runs with the defaults)
    too_large = "x" * (get_settings().max_body_bytes + 1)
    _error(requests.post(base, data=too_large, headers=headers, timeout=10), 413, "payload_too_large")


def test_unknown_routes_and_methods_over_http(stack: LocalStack) -> None:
    _error(requests.get(f"{stack.api}/api/v1/unknown", timeout=10), 404, "not_found")
    wrong = requests.put(f"{stack.api}/api/v1/sessions/{uuid.uuid4()}", json={}, timeout=10)
    _error(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "DELETE, GET, PATCH"
    _error(requests.get(f"{stack.api}/api/v1/sessions", timeout=10), 404, "not_found")


def test_cors_preflight_and_headers(stack: LocalStack) -> None:
    origin = {"Origin": "https://chat.example.com"}
    preflight = requests.options(
        f"{stack.api}/api/v1/sessions",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-session-token",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "x-session-token" in preflight.headers["Access-Control-Allow-Headers"]
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, headers=origin, timeout=10)
    assert created.headers["Access-Control-Allow-Origin"] == "*"


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def _bearer(sub: str, **extra: Any) -> dict[str, str]:
    claims = {"sub": sub, "iss": "https://issuer.test", "aud": "chatvault", "exp": time.time() + 300, **extra}
    return {"Authorization": f"Bearer {_jwt(claims)}"}


def test_jwt_mode_over_http(jwt_stack: LocalStack) -> None:
    base = f"{jwt_stack.api}/api/v1/sessions"
    refused = requests.post(base, json={}, timeout=10)  # the authorizer refuses, in its own words
    assert (refused.status_code, refused.json()) == (401, {"message": "Unauthorized"})
    assert (
        requests.post(base, json={}, headers=_bearer("a", iss="https://evil.test"), timeout=10).status_code
        == 401
    )
    assert requests.post(base, json={}, headers=_bearer("a", exp=1), timeout=10).status_code == 401

    mine = requests.post(base, json={"title": "mine"}, headers=_bearer("alice"), timeout=10)
    assert mine.status_code == 201
    assert mine.json()["session_token"] is None
    theirs = requests.post(base, json={"title": "theirs"}, headers=_bearer("bob"), timeout=10).json()

    url = f"{base}/{mine.json()['session_id']}"
    assert requests.get(url, headers=_bearer("alice"), timeout=10).status_code == 200
    _error(requests.get(url, headers=_bearer("bob"), timeout=10), 404, "session_not_found")
    listed = requests.get(base, headers=_bearer("alice"), timeout=10).json()
    assert [s["title"] for s in listed["items"]] == ["mine"]
    assert theirs["session_id"] not in json.dumps(listed)


def test_make_invoke_runs_a_function_against_the_stack(stack: LocalStack, tmp_path: Any) -> None:
    env_file = tmp_path / "env.json"
    # the canonical event comes from 127.0.0.1, like every other test's requests: lift the per-client limit
    env = {"RETENTION_HOURS": "1", "CREATE_LIMIT_PER_MINUTE": "100000"}
    env_file.write_text(json.dumps({"CreateSessionFunction": env}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.invoke",
            "CreateSessionFunction",
            "--event",
            "tests/events/create_session.json",
            "--env-vars",
            str(env_file),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CHATVAULT_DEV_STATE": str(stack.state)},  # found, not told
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 201, response
    session = json.loads(response["body"])
    created = datetime.fromisoformat(session["created_at"])
    expires = datetime.fromisoformat(session["expires_at"])
    assert timedelta(minutes=59) < expires - created <= timedelta(hours=1)  # RETENTION_HOURS=1 from env.json
    # the canned event's fixed id is replaced by a fresh one (a second run would otherwise be 409), and
    # stderr says so
    assert session["session_id"] != CANNED_SESSION_ID
    assert f"canned event: it runs with a fresh session id ({session['session_id']})" in result.stderr
    items = table_items(stack)
    assert any(i["pk"]["S"] == session["session_id"] for i in items)


def _invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local.invoke", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


CANNED_SESSION_ID = "3f6c2a9e-8d14-4b7a-9c21-5e0f7a1b2c3d"  # the session the events in tests/events/ name


def _make_invoke(stack: LocalStack, *args: str) -> tuple[int, dict[str, Any], str]:
    """`make invoke …` as a person types it: its exit status, the answer (statusCode and body as JSON)
    on stdout, alone, and what it said on stderr."""
    done = subprocess.run(
        ["make", "--no-print-directory", "invoke", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "CHATVAULT_DEV_STATE": str(stack.state)},
    )
    answer = json.loads(done.stdout) if done.returncode == 0 else {}
    if answer:
        answer["body"] = json.loads(answer["body"]) if answer["body"].startswith("{") else answer["body"]
    return done.returncode, answer, done.stderr


def test_make_helps_invoke_example_answers_200_every_time(stack: LocalStack) -> None:
    """`make help`'s example (GetSession) runs on a session created for it, so it is 200, not the 404
    the canned event's placeholder token would get; and every run again, each on its own session."""
    helped = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    (example,) = re.findall(r"make invoke (FN=\S+ EVENT=\S+)", helped)
    sessions = []
    for _ in range(2):
        code, answer, said = _make_invoke(stack, *example.split())
        assert code == 0, said
        assert answer["statusCode"] == 200, answer
        sessions.append(answer["body"]["session_id"])
        assert f"a session created for it just now (session_id {sessions[-1]}, X-Session-Token " in said
    assert len(set(sessions)) == 2
    assert CANNED_SESSION_ID not in sessions


@pytest.mark.parametrize(
    ("function", "event", "status"),
    [
        # with test_make_invoke_runs_a_function_against_the_stack, the second create from the canned
        # event on this stack: 201 again (409 session_exists with the event's fixed id)
        ("CreateSessionFunction", "create_session", 201),
        ("AppendMessageFunction", "append_message", 201),
        ("ChatFunction", "chat", 201),
        ("ListMessagesFunction", "list_messages", 200),
        ("UpdateSessionFunction", "update_session", 200),
        ("CreateUploadFunction", "create_upload", 201),
        ("ListUploadsFunction", "list_uploads", 200),
        ("ExportSessionFunction", "export_session", 200),
        ("DeleteSessionFunction", "delete_session", 200),
        ("ChatStreamFunction", "chat_stream", 200),  # a streaming function's request, not an HTTP API event
        ("StopReplyFunction", "stop_reply", 200),
    ],
)
def test_the_canned_events_answer_as_on_a_real_session(
    stack: LocalStack, function: str, event: str, status: int
) -> None:
    code, answer, said = _make_invoke(stack, f"FN={function}", f"EVENT=tests/events/{event}.json")
    assert code == 0, said
    assert answer["statusCode"] == status, answer
    assert "is a canned event" in said
    assert CANNED_SESSION_ID not in json.dumps(answer)


def test_make_invoke_as_is_sends_the_canned_event_unchanged(stack: LocalStack) -> None:
    """AS_IS=1: the placeholder token stays, so the session is not found (the old behaviour, on demand)."""
    code, answer, said = _make_invoke(
        stack, "FN=GetSessionFunction", "EVENT=tests/events/get_session.json", "AS_IS=1"
    )
    assert code == 0, said
    assert (answer["statusCode"], answer["body"]["error"]["code"]) == (404, "session_not_found")
    assert "canned event" not in said


def test_a_refused_create_for_a_canned_event_says_why_and_what_to_do(tmp_path: Any) -> None:
    """Every local request comes from 127.0.0.1, so make invoke's own creates share the per-client
    create limit with everything else: a refusal is one line naming the limit, not a traceback."""
    with local_stack(tmp_path, "CreateSessionRateLimit=1") as limited:
        while time.time() % 60 > 45:  # both creates in one minute's window
            time.sleep(1)
        event = "EVENT=tests/events/get_session.json"
        assert _make_invoke(limited, "FN=GetSessionFunction", event)[0] == 0
        code, answer, said = _make_invoke(limited, "FN=GetSessionFunction", event)
    assert (code, answer) == (2, {})  # make's own code for a failed command (the command's is 1)
    line = next(line for line in said.splitlines() if line.startswith("make invoke:"))
    assert "creating it was refused (429 rate_limited): CreateSessionRateLimit allows 1 creates" in line
    assert "PARAMETER_OVERRIDES=CreateSessionRateLimit=1000" in line
    assert "Traceback" not in said


def test_make_invoke_without_a_running_stack_says_so(tmp_path: Any) -> None:
    from tests.integration.local_stack import free_port

    (tmp_path / "broken.json").write_text("{not json")
    for state in ("none.json", "broken.json"):  # no state file, or one that no `make dev` wrote
        gone = {"CHATVAULT_DEV_STATE": str(tmp_path / state), "MOTO_PORT": str(free_port())}
        result = _invoke("GetSessionFunction", "--event", "tests/events/get_session.json", env=gone)
        assert result.returncode == 3, result.stderr
        assert "no local stack answers" in result.stderr
        assert "make dev" in result.stderr
        assert result.stdout == ""


def test_make_invoke_exits_non_zero_when_the_function_answers_5xx(stack: LocalStack, tmp_path: Any) -> None:
    env_file = tmp_path / "env.json"
    env_file.write_text(json.dumps({"GetSessionFunction": {"TABLE_NAME": "no-such-table"}}))
    result = _invoke(
        "GetSessionFunction",
        "--event",
        "tests/events/get_session.json",
        "--env-vars",
        str(env_file),
        env={"CHATVAULT_DEV_STATE": str(stack.state)},
    )
    assert result.returncode == 1, result.stdout
    assert json.loads(result.stdout)["statusCode"] == 500


def test_rate_limits_over_http_with_default_settings(limited_stack: LocalStack) -> None:
    base = f"{limited_stack.api}/api/v1/sessions"
    while time.time() % 60 > 40:  # the eleven creates in one minute's window (the limit is per minute)
        time.sleep(1)
    created = [requests.post(base, json={}, timeout=10) for _ in range(10)]
    assert [r.status_code for r in created] == [201] * 10
    refused = requests.post(base, json={}, timeout=10)
    _error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    # AppendRateLimit (120 a minute per session): a burst of 120 from an idle session passes, then one
    # every half second; the refusal writes nothing, and another session is not held back by this one
    session, other = created[0].json(), created[1].json()
    url, headers = f"{base}/{session['session_id']}", {"X-Session-Token": session["session_token"]}

    def send(i: int) -> requests.Response:
        return requests.post(
            f"{url}/messages", json={"role": "user", "content": f"m{i}"}, headers=headers, timeout=30
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert [r.status_code for r in pool.map(send, range(120))] == [201] * 120
    accepted = 120
    while (over := send(accepted)).status_code == 201 and accepted < 400:
        accepted += 1
    elapsed = time.monotonic() - started
    _error(over, 429, "rate_limited")
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert accepted <= 120 + 2 * elapsed + 1  # the sustained rate: 120 a minute
    assert requests.get(url, headers=headers, timeout=10).json()["message_count"] == accepted
    fine = requests.post(
        f"{base}/{other['session_id']}/messages",
        json={"role": "user", "content": "fine"},
        headers={"X-Session-Token": other["session_token"]},
        timeout=10,
    )
    assert fine.status_code == 201


def test_probing_a_session_id_over_http_is_charged_and_audited_in_bounded_items(
    probed_stack: LocalStack,
) -> None:
    """A client asks 40 times for one id of its choosing: the first is 201, then 409 until its create
    limit (10 a minute) is used up, then 429, so the oracle costs it its limit; every refusal is in
    the audit table, under the client's fingerprint, without the id, counted on one item per event
    and minute."""
    base = f"{probed_stack.api}/api/v1/sessions"
    sid = str(uuid.uuid4())
    answers = [requests.post(base, json={"session_id": sid}, timeout=10) for _ in range(40)]
    statuses = [r.status_code for r in answers]

    assert statuses[0] == 201
    assert set(statuses[1:]) <= {409, 429}
    assert statuses.count(429) >= 20  # at most 10 attempts a minute, and 40 fit in two
    _error(next(r for r in answers if r.status_code == 409), 409, "session_exists")
    _error(next(r for r in answers if r.status_code == 429), 429, "rate_limited")
    audit = boto3.client("dynamodb", endpoint_url=probed_stack.moto, region_name="us-east-1").scan(
        TableName="chatvault-local-AuditTable"
    )["Items"]
    for event, status in (("session_exists", 409), ("rate_limited", 429)):
        refusals = [i for i in audit if i["event"]["S"] == event]
        assert 1 <= len(refusals) <= 2, event  # one item a minute (the 40 may straddle two)
        assert sum(int(i["times"]["N"]) for i in refusals) == statuses.count(status), event
        assert all(i["pk"]["S"].startswith("c#") for i in refusals)
    assert len(audit) <= 5  # the session's creation and at most four refusal items, not 39
    assert sid not in json.dumps(audit)


def test_fingerprints_are_keyed_by_a_secret_that_is_never_logged(stack: LocalStack) -> None:
    """No table holds the source address, and no public salt turns it into a stored fingerprint."""
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    headers = {"X-Session-Token": created["session_token"]}
    requests.patch(
        f"{stack.api}/api/v1/sessions/{created['session_id']}",
        json={"status": "ended"},
        headers=headers,
        timeout=10,
    )
    audit = stack.client("dynamodb").scan(TableName="chatvault-local-AuditTable")["Items"]
    actors = {item["actor"]["S"] for item in audit if "actor" in item}
    assert actors
    public_salts = (
        "chatvault-local",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/chatvault-local/local",
        "",
    )
    guesses = {
        hmac.new(salt.encode(), b"ip:127.0.0.1", hashlib.sha256).hexdigest()[:32] for salt in public_salts
    }
    assert not actors & guesses
    assert "127.0.0.1" not in json.dumps(table_items(stack), default=repr)
    value = stack.client("secretsmanager").get_secret_value(SecretId="chatvault-local-FingerprintSecret")[
        "SecretString"
    ]
    assert len(value) >= 32
    assert value not in stack.log.read_text()
