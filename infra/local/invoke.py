"""`make invoke FN=<LogicalId> EVENT=<file> [ENV=<env.json>]`: like `sam local invoke FN -e EVENT
--env-vars ENV` without Docker, against the moto server that `make dev` runs (MOTO_PORT).
env.json has sam's format: {"<LogicalId>": {"VAR": "value"}, "Parameters": {"VAR": "value"}}."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.local.runtime import FunctionError, Runtime
from infra.local.template import Stack, parameter_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", help="logical id in template.yaml, e.g. GetSessionFunction")
    parser.add_argument("--event", "-e", required=True, type=Path)
    parser.add_argument("--env-vars", "-n", type=Path)
    args = parser.parse_args(argv)

    stack = Stack.from_template(parameter_overrides())
    functions = stack.functions()
    if args.function not in functions:
        parser.error(f"no function {args.function}; one of: {', '.join(sorted(functions))}")
    extra: dict[str, str] = {}
    if args.env_vars:
        data = json.loads(args.env_vars.read_text())
        merged = {**data.get("Parameters", {}), **data.get(args.function, {})}
        # as in sam: only variables the template declares for the function can be overridden
        extra = {k: str(v) for k, v in merged.items() if k in functions[args.function].environment}
    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '5000')}"
    runtime = Runtime({args.function: functions[args.function]}, stack.layer_dirs(), endpoint, extra)
    try:
        result = runtime.invoke(args.function, json.loads(args.event.read_text()))
    except FunctionError as exc:
        print(json.dumps({"errorMessage": str(exc)}))
        return 1
    finally:
        runtime.close()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
