"""AppendRateLimit: at most N appends a minute to one session, checked in the append's own conditional
write (no extra round trip, nothing written when refused). A rule, not storage: the use case hands it
to the dal's append (dal/messages.py) as its `pacer`.

The session item keeps the limit's state in one number, `append_tat` (the generic cell rate
algorithm's theoretical arrival time, in microseconds): each append moves it to max(tat, now) + 60 s/N,
and an append that would move it more than a minute ahead of now is refused with 429. A burst of N
from an idle session passes, then one append every 60/N seconds.

An update expression cannot say max(), so an attempt states which of two cases it expects, each a
range rather than a value, so that concurrent writers do not invalidate each other's guess:
- idle (no tat, or tat < now): set tat = now + interval;
- busy (now <= tat <= now + window - interval): set tat = tat + interval.
A wrong guess fails its condition, the refused write returns the session (ALL_OLD) with its real tat,
and the next attempt knows the case (or that the limit is reached: 429). The last tat this process
wrote is remembered per session, so a burst served by one warm instance guesses right the first time.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from chatvault.core.errors import RateLimitedError
from chatvault.models.domain import Pace

WINDOW_US = 60_000_000
_REMEMBERED = 1024
_recent: OrderedDict[str, int] = OrderedDict()  # session id -> the tat this process last wrote (about)


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def step(session_id: str, limit: int, now: datetime, known: int | None, *, first: bool) -> Pace | None:
    """The pace for an append attempt (None: the limit is off), or 429 when the append would exceed
    it. The first attempt guesses (from this process's memory); later ones know the session's tat
    from the refused attempt (`known`, None when the session has none)."""
    if limit <= 0:
        return None
    now_us = micros(now)
    tat = _recent.get(session_id) if first else known
    busy = tat is not None and tat >= now_us
    pace = Pace(busy=busy, now=now_us, interval=WINDOW_US // limit, window=WINDOW_US, seen=tat)
    if busy and not first and tat is not None and tat > pace.ceiling:
        # Only a known tat refuses: a guess is decided by the session item, which also lets an
        # idempotent retry of an accepted message through (200) when the session is over its limit.
        wait_s = math.ceil((tat - pace.ceiling) / 1_000_000)
        raise RateLimitedError(
            max(1, wait_s), f"More than {limit} messages a minute in this session; retry later."
        )
    return pace


def accepted(session_id: str, pace: Pace | None) -> None:
    """Remember (a lower bound of) the tat an accepted append wrote; the least recently used are
    forgotten."""
    if pace is None:
        return
    base = max(pace.now, pace.seen) if pace.busy and pace.seen is not None else pace.now
    _recent[session_id] = base + pace.interval
    _recent.move_to_end(session_id)
    while len(_recent) > _REMEMBERED:
        _recent.popitem(last=False)


@dataclass(frozen=True)
class AppendLimit:
    """AppendRateLimit for the appends of one request (the dal's append calls it at each attempt:
    models.domain.Pacer)."""

    per_minute: int

    def step(self, session_id: str, now: datetime, known: int | None, *, first: bool) -> Pace | None:
        return step(session_id, self.per_minute, now, known, first=first)

    def accepted(self, session_id: str, pace: Pace | None) -> None:
        accepted(session_id, pace)
