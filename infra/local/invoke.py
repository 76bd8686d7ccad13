"""`make invoke FN=<LogicalId> EVENT=<file> [ENV=<env.json>]`: like `sam local invoke FN -e EVENT
--env-vars ENV` without Docker, against the stack that `make dev` runs: found from the file it
writes while it runs (.dev-stack.json), else at MOTO_PORT. No stack answering is exit 3 with a
message saying so; an HTTP answer of 5xx (or a function error) is exit 1.
env.json has sam's format: {"<LogicalId>": {"VAR": "value"}, "Parameters": {"VAR": "value"}}.

The canned events of tests/events/ name one fixed session and carry a placeholder for its token: sent
as they are, a create is 409 from its second run on, and every other call is 404. So each run gives a
canned event a session of its own: a create gets a fresh id; an event that carries the placeholder
token runs on a session created for it first (by CreateSessionFunction), whose id and token replace
the canned ones; stderr says which. `--as-is` (make invoke AS_IS=1) sends the event unchanged."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from infra.local.runtime import FunctionError, Runtime
from infra.template import Stack, parameter_overrides, state_file

NO_STACK = 3

# what the canned events in tests/events/ hold in place of a real session
CANNED_SESSION_ID = "3f6c2a9e-8d14-4b7a-9c21-5e0f7a1b2c3d"
TOKEN_PLACEHOLDER = "replace-with-the-session_token-from-create"


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # it answered (moto answers / with an error document)
    except OSError:
        return False
    return True


def running_stack() -> tuple[str, dict[str, str]] | None:
    """The emulator endpoint of the running `make dev`, and its parameter overrides."""
    state = state_file()
    try:
        written: dict[str, Any] = json.loads(state.read_text())
        endpoint, overrides = str(written["moto"]), dict(written.get("parameter_overrides") or {})
    except (OSError, ValueError, KeyError, TypeError):  # none, or not one `make dev` wrote: ignore it
        pass
    else:
        if _answers(endpoint):
            return endpoint, overrides
    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
    return (endpoint, parameter_overrides()) if _answers(endpoint) else None


def _replaced(event: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    """The event with each placeholder replaced wherever it occurs (paths, headers, the body)."""
    text = json.dumps(event)
    for old, new in replacements.items():
        text = text.replace(old, new)
    replaced: dict[str, Any] = json.loads(text)
    return replaced


def _create_event(event: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/v1/sessions` (an HTTP API event) from the same client as `event`, which is an HTTP
    API event or a streaming function's request (`source_ip`, `headers`)."""
    context = event.get("requestContext") or {}
    source_ip = (context.get("http") or {}).get("sourceIp") or event.get("source_ip") or "127.0.0.1"
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "x-session-token"}
    headers = {**headers, "content-type": "application/json"}
    headers.pop("accept", None)
    return {
        "version": "2.0",
        "routeKey": "POST /api/v1/sessions",
        "rawPath": "/api/v1/sessions",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": context.get("accountId", "123456789012"),
            "apiId": context.get("apiId", "local"),
            "domainName": context.get("domainName", "127.0.0.1"),
            "domainPrefix": context.get("domainPrefix", "local"),
            "http": {
                "method": "POST",
                "path": "/api/v1/sessions",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", "make invoke"),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST /api/v1/sessions",
            "stage": "$default",
            "time": context.get("time", "22/Nov/2026:10:04:05 +0000"),
            "timeEpoch": context.get("timeEpoch", 1795341845123),
        },
        "isBase64Encoded": False,
        "body": json.dumps({"title": "make invoke"}),
    }


def _fresh_session(event: dict[str, Any], stack: Stack, endpoint: str, name: str) -> dict[str, Any] | str:
    """The canned event on a session of its own (see the module's docstring), or why there is none.
    In jwt mode a session belongs to a JWT's subject, which a canned event does not carry: the event
    only gets a fresh id there."""
    if TOKEN_PLACEHOLDER not in json.dumps(event) or stack.parameters["AuthMode"] == "jwt":
        fresh = str(uuid.uuid4())
        note = f"it runs with a fresh session id ({fresh})"
        print(f"make invoke: {name} is a canned event: {note}.", file=sys.stderr)
        return _replaced(event, {CANNED_SESSION_ID: fresh})
    creator = Runtime(
        {"CreateSessionFunction": stack.functions()["CreateSessionFunction"]}, stack.layer_dirs(), endpoint
    )
    try:
        result = creator.invoke("CreateSessionFunction", _create_event(event))
    except FunctionError as exc:
        return f"CreateSessionFunction failed: {exc}"
    finally:
        creator.close()
    created = json.loads(result.get("body") or "{}") if isinstance(result, dict) else {}
    if not (isinstance(result, dict) and result.get("statusCode") == 201 and created.get("session_token")):
        status = result.get("statusCode") if isinstance(result, dict) else result
        if status == 429:  # the same client as everything else on the local stack: 127.0.0.1
            limit = stack.parameters["CreateSessionRateLimit"]
            wait = (result.get("headers") or {}).get("Retry-After", "a few")
            return (
                f"creating it was refused (429 rate_limited): CreateSessionRateLimit allows {limit} creates "
                "a minute per client, and every local request comes from 127.0.0.1. Retry in "
                f"{wait} s, or start make dev with PARAMETER_OVERRIDES=CreateSessionRateLimit=1000"
            )
        return f"creating its session answered {status}: {json.dumps(created)}"
    session_id, token = created["session_id"], created["session_token"]
    print(
        f"make invoke: {name} is a canned event: it runs on a session created for it just now "
        f"(session_id {session_id}, X-Session-Token {token}).",
        file=sys.stderr,
    )
    return _replaced(event, {CANNED_SESSION_ID: session_id, TOKEN_PLACEHOLDER: token})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="logical id in template.yaml, e.g. GetSessionFunction")
    parser.add_argument("--event", "-e", required=True, type=Path)
    parser.add_argument("--env-vars", "-n", type=Path)
    parser.add_argument(
        "--as-is", action="store_true", help="send the event unchanged, even a canned one (no fresh session)"
    )
    args = parser.parse_args(argv)

    found = running_stack()
    if found is None:
        print(
            "make invoke: no local stack answers (none at .dev-stack.json's address or at MOTO_PORT "
            f"{os.environ.get('MOTO_PORT', '5000')}); start one with `make dev` in another shell.",
            file=sys.stderr,
        )
        return NO_STACK
    endpoint, overrides = found
    stack = Stack.from_template(overrides)
    functions = stack.functions()
    if args.function not in functions:
        parser.error(f"no function {args.function}; one of: {', '.join(sorted(functions))}")
    extra: dict[str, str] = {}
    if args.env_vars:
        data = json.loads(args.env_vars.read_text())
        merged = {**data.get("Parameters", {}), **data.get(args.function, {})}
        # as in sam: only variables the template declares for the function can be overridden
        extra = {k: str(v) for k, v in merged.items() if k in functions[args.function].environment}
    event = json.loads(args.event.read_text())
    if not args.as_is and CANNED_SESSION_ID in json.dumps(event):
        prepared = _fresh_session(event, stack, endpoint, str(args.event))
        if isinstance(prepared, str):
            print(f"make invoke: no session for the canned event {args.event}: {prepared}", file=sys.stderr)
            return 1
        event = prepared
    runtime = Runtime({args.function: functions[args.function]}, stack.layer_dirs(), endpoint, extra)
    try:
        result = runtime.invoke(args.function, event)
    except FunctionError as exc:
        print(json.dumps({"errorMessage": str(exc)}))
        return 1
    finally:
        runtime.close()
    print(json.dumps(result, indent=2))
    status = result.get("statusCode") if isinstance(result, dict) else None
    return 1 if isinstance(status, int) and status >= 500 else 0


if __name__ == "__main__":
    sys.exit(main())
