"""Time in one place: the contract's ISO-8601 form (milliseconds, `Z`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """The current UTC time, truncated to whole milliseconds (what the API can show)."""
    ms = time.time_ns() // 1_000_000
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def millis(moment: datetime) -> int:
    """Epoch milliseconds (the guards' and leases' `until`)."""
    return int(moment.timestamp() * 1000)


def iso(moment: datetime) -> str:
    """`2026-11-22T10:04:05.123Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
