"""The template's Schedule events, run locally: `rate(N minute|minutes|hour|hours|day|days)` invokes the
function with an EventBridge "Scheduled Event" every N units, first after one interval."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.local.runtime import FunctionError, Runtime
from infra.template import ACCOUNT, REGION, Stack

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(expression: str) -> int:
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"only rate(...) schedules run locally, not {expression!r}")
    return int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def schedules(stack: Stack) -> list[tuple[str, str, int]]:
    """(function, event name, interval in seconds) for every enabled Schedule event."""
    found = []
    for fn in stack.functions().values():
        for name, event in fn.events.items():
            props = event.get("Properties", {})
            if event.get("Type") == "Schedule" and props.get("Enabled", True):
                found.append((fn.name, name, interval_seconds(props["Schedule"])))
    return found


def start(stack: Stack, runtime: Runtime, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for function, name, every in schedules(stack):

        def loop(function: str = function, name: str = name, every: int = every) -> None:
            while not stop.wait(every):
                try:
                    result = runtime.invoke(function, scheduled_event(f"{function}{name}"))
                    print(f"[schedule] {function}: {result}", flush=True)
                except FunctionError as exc:
                    print(f"[schedule] {function} failed: {exc}", flush=True)

        thread = threading.Thread(target=loop, daemon=True, name=f"schedule-{function}")
        thread.start()
        threads.append(thread)
        print(f"[dev] {function} runs every {every} s ({name})", flush=True)
    return threads
