"""Reads sent beside another request (one round trip of latency for both): a small thread pool whose
threads are named, so that a read already on it does its own side reads inline instead of waiting on
the pool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache

from chatvault.models.domain import SessionRecord

_SIDE_READ = "session-read"


@lru_cache(maxsize=1)
def _side_reads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix=_SIDE_READ)


def concurrently(
    read: Callable[[str], SessionRecord | None], session_id: str
) -> Future[SessionRecord | None]:
    """Send a read of the session now, alongside a write or a query (one round trip of latency for
    both); the caller takes its result when it needs it."""
    return in_background(read, session_id)


def in_background[**P, R](read: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
    """Any read, sent now beside another request (as `concurrently`)."""
    return _side_reads().submit(read, *args, **kwargs)


def on_side_thread() -> bool:
    """Whether this code runs on a side read already."""
    return threading.current_thread().name.startswith(_SIDE_READ)
