"""The invocation's deadline, so retries never outlive the Lambda.

Handlers call `start(context)`; every AWS client checks, before each HTTP attempt (the first and each
retry), that the attempt can still finish in time. When it cannot, the call fails with
StorageUnavailableError (503 with Retry-After) instead of the Lambda being killed mid-way."""

from __future__ import annotations

import time
from typing import Any, Protocol

from chatvault.errors import StorageUnavailableError

READ_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 1.0
MARGIN_S = 0.5

_deadline: float | None = None


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def start(context: _Context | None) -> None:
    global _deadline  # noqa: PLW0603 - one invocation at a time per process, as in Lambda
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    _deadline = time.monotonic() + remaining() / 1000 if callable(remaining) else None


def check(**_: Any) -> None:
    """botocore `before-send` hook: refuse an attempt that could not finish before the deadline."""
    if _deadline is not None and _deadline - time.monotonic() < CONNECT_TIMEOUT_S + READ_TIMEOUT_S + MARGIN_S:
        raise StorageUnavailableError("The service ran out of time waiting for storage; retry shortly.")


def guard(client: Any) -> Any:
    """Register the deadline check on a botocore client (once)."""
    if not getattr(client, "_deadline_guarded", False):
        client.meta.events.register_first("before-send.*.*", check)
        client._deadline_guarded = True
    return client
