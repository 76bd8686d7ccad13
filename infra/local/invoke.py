"""`make invoke FN=<LogicalId> EVENT=<file> [ENV=<env.json>]`: like `sam local invoke FN -e EVENT
--env-vars ENV` without Docker, against the stack that `make dev` runs: found from the file it
writes while it runs (.dev-stack.json), else at MOTO_PORT. No stack answering is exit 3 with a
message saying so; an HTTP answer of 5xx (or a function error) is exit 1.
env.json has sam's format: {"<LogicalId>": {"VAR": "value"}, "Parameters": {"VAR": "value"}}."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from infra.local.runtime import FunctionError, Runtime
from infra.local.template import Stack, parameter_overrides, state_file

NO_STACK = 3


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="logical id in template.yaml, e.g. GetSessionFunction")
    parser.add_argument("--event", "-e", required=True, type=Path)
    parser.add_argument("--env-vars", "-n", type=Path)
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
    runtime = Runtime({args.function: functions[args.function]}, stack.layer_dirs(), endpoint, extra)
    try:
        result = runtime.invoke(args.function, json.loads(args.event.read_text()))
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
