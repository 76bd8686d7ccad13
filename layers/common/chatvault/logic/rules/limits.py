"""Refusals of a limited request leave a trace in the audit trail, under the client's fingerprint (no
session exists, or the caller may not be its owner): 429 `rate_limited`, and 409 `session_exists`
(a create whose client-chosen id is taken: the attempt is charged like any other, and the id asked
for is not recorded, neither in the clear nor as the key of the session's trail, which is its
owner's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from chatvault.core.errors import RateLimitedError, SessionExistsError
from chatvault.core.observability import logger, metrics
from chatvault.dal import audit, limits
from chatvault.models.domain import AuditEntry, RateCharge, RefusalEvent


@contextmanager
def refusals_audited(charge: RateCharge) -> Iterator[None]:
    try:
        yield
    except RateLimitedError:
        metrics.add_metric(name="RequestsRateLimited", unit="Count", value=1)
        _audit(charge, "rate_limited")
        raise
    except SessionExistsError:
        _audit(charge, "session_exists")
        raise


def charge_session_hourly(action: str, session_id: str, at: datetime, per_hour: int, done: str) -> None:
    """Count one `action` on the session in the current hour (one write unit), or 429 when it has had
    `per_hour` of them: `done` says what, for the message ("was exported", "gave feedback")."""
    if not limits.charge_hourly(action, session_id, at, per_hour):
        metrics.add_metric(name="RequestsRateLimited", unit="Count", value=1)
        raise RateLimitedError(
            retry_after=3600 - int(at.timestamp()) % 3600,
            message=f"This session {done} {per_hour} times this hour.",
        )


def _audit(charge: RateCharge, event: RefusalEvent) -> None:
    """One audit item per client, action, event and minute, with how many there were: a client at its
    limit would otherwise write one item a request, each kept for AUDIT_RETENTION_DAYS. Two writes,
    on the refused path only: the count (limits table), then the item that carries it."""
    try:
        times = limits.count_refusal(charge, event)
        audit.record_refusal(
            AuditEntry(event=event, at=charge.at, actor=charge.client, details={"action": charge.action}),
            times,
        )
    except Exception:  # the refusal stands even if its trace cannot be written now
        logger.warning("refusal not audited", extra={"action": charge.action, "event": event})
