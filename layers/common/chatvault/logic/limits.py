"""Rate-limit refusals leave a trace in the audit trail (under the client's fingerprint: no session
exists, or the caller may not be its owner)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chatvault.dal import audit
from chatvault.errors import RateLimitedError
from chatvault.models.domain import AuditEntry, RateCharge
from chatvault.observability import logger, metrics


@contextmanager
def refusals_audited(charge: RateCharge) -> Iterator[None]:
    try:
        yield
    except RateLimitedError:
        metrics.add_metric(name="RequestsRateLimited", unit="Count", value=1)
        try:
            audit.record(
                AuditEntry(
                    event="rate_limited",
                    at=charge.at,
                    actor=charge.client,
                    details={"action": charge.action},
                )
            )
        except Exception:  # the refusal stands even if its trace cannot be written now
            logger.warning("rate-limit refusal not audited", extra={"action": charge.action})
        raise
