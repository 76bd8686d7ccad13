"""What the local event sources share (streams.py, subscriber.py, events.py): the template's events of
one kind that the local stack can run, and a thread that polls until `make dev` stops."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from infra.template import Function


def enabled_events(
    functions: dict[str, Function], kind: str, known: set[str], where: str
) -> Iterator[tuple[Function, str, dict[str, Any]]]:
    """(function, event name, properties) of each enabled event of this kind. A property the local
    stack does not run stops it at start (`where` says which module to teach), rather than passing
    silently."""
    for fn in functions.values():
        for name, event in fn.events.items():
            if event.get("Type") != kind:
                continue
            props: dict[str, Any] = event.get("Properties", {})
            unknown = set(props) - known
            if unknown:
                raise ValueError(f"{fn.name} {name}: {sorted(unknown)} not run locally ({where})")
            if props.get("Enabled", True):
                yield fn, name, props


def poll_forever(
    step: Callable[[], object], stop: threading.Event, *, name: str, failed: str
) -> threading.Thread:
    """Run `step` again and again in a daemon thread until `stop` is set. A step that fails (the
    emulator stopping under us, at shutdown) is reported as `failed: <error>` unless stopping, and the
    next one comes a second later."""

    def loop() -> None:
        while not stop.is_set():
            try:
                step()
            except Exception as exc:
                if not stop.is_set():
                    print(f"{failed}: {exc}", flush=True)
                stop.wait(1)

    thread = threading.Thread(target=loop, daemon=True, name=name)
    thread.start()
    return thread
