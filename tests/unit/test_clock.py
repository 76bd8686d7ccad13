from __future__ import annotations

from datetime import UTC, datetime

from chatvault.core import clock


def test_iso_has_milliseconds_and_z() -> None:
    assert clock.iso(datetime(2026, 11, 22, 10, 4, 5, 123456, tzinfo=UTC)) == "2026-11-22T10:04:05.123Z"
    assert clock.iso(datetime(2026, 11, 22, tzinfo=UTC)) == "2026-11-22T00:00:00.000Z"


def test_now_is_utc_and_whole_milliseconds() -> None:
    moment = clock.now()
    assert moment.tzinfo is not None
    assert moment.utcoffset().total_seconds() == 0
    assert moment.microsecond % 1000 == 0
