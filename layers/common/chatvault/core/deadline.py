"""The invocation's deadline, so retries never outlive the Lambda.

Handlers call `start(context)`; every AWS client checks, before each HTTP attempt (the first and each
retry), that the attempt can still finish in time, and before each backoff sleep that the sleep and
one more attempt still fit (botocore's backoff for throttling doubles up to 20 s, longer than a
request has). When they cannot, the call fails with StorageUnavailableError (503 with Retry-After)
instead of the Lambda being killed mid-way."""

from __future__ import annotations

import time
from typing import Any, Protocol

from chatvault.core.errors import StorageUnavailableError

READ_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 1.0
MARGIN_S = 0.5
MAX_BACKOFF_S = 20.0  # botocore's standard retry mode

_retry_events: Any = None

_deadline: float | None = None


class _Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


def start(context: _Context | None) -> None:
    global _deadline  # noqa: PLW0603 - one invocation at a time per process, as in Lambda
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    _deadline = time.monotonic() + remaining() / 1000 if callable(remaining) else None


def _attempt_budget() -> float:
    return CONNECT_TIMEOUT_S + READ_TIMEOUT_S + MARGIN_S


def check(**_: Any) -> None:
    """botocore `before-send` hook: refuse an attempt that could not finish before the deadline."""
    if _deadline is not None and _deadline - time.monotonic() < _attempt_budget():
        raise StorageUnavailableError("The service ran out of time waiting for storage; retry shortly.")


def check_backoff(**kwargs: Any) -> None:
    """botocore `needs-retry` hook, before its retry handler: when botocore would retry, refuse if its
    longest possible backoff sleep (rand * 2^(attempt-1) s) and one more attempt could outlast the
    deadline. Answers nothing otherwise, so botocore's own retry decision stands."""
    if _deadline is None:
        return
    global _retry_events  # noqa: PLW0603 - built once, on the first retry decision
    if _retry_events is None:
        from botocore.retries import standard

        _retry_events = (standard.RetryEventAdapter(), standard.StandardRetryConditions(max_attempts=99))
    adapter, conditions = _retry_events
    context = adapter.create_retry_context(**kwargs)
    if not conditions.is_retryable(context):
        return
    longest_sleep = min(MAX_BACKOFF_S, 2.0 ** (context.attempt_number - 1))
    if _deadline - time.monotonic() - longest_sleep < _attempt_budget():
        raise StorageUnavailableError("The service ran out of time waiting for storage; retry shortly.")


def guard(client: Any) -> Any:
    """Register the deadline checks on a botocore client (once)."""
    if not getattr(client, "_deadline_guarded", False):
        client.meta.events.register_first("before-send.*.*", check)
        client.meta.events.register_first("needs-retry.*.*", check_backoff)
        client._deadline_guarded = True
    return client


def remaining_s() -> float | None:
    """Seconds left in this invocation; None outside one (tests, tools)."""
    return None if _deadline is None else _deadline - time.monotonic()
