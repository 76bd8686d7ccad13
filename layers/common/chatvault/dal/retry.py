"""Storage faults in one place: what is worth retrying, how often, and what a caller sees when retries
run out.

The retry policy:
- every AWS request: botocore's standard mode, SDK_ATTEMPTS attempts (dal/clients.py; PynamoDB's
  models through dal/items.py's TableMeta), each attempt and each backoff sleep only while the
  invocation's deadline leaves time for it (deadline.py);
- what botocore does not retry, our loops retry, sleeping `pause(attempt)` (full jitter) between
  attempts: unprocessed batch items (BATCH_ATTEMPTS), transactions cancelled only for a conflict with
  another transaction (TRANSACTION_ATTEMPTS), and an append that lost the race for its position
  (APPEND_ATTEMPTS, logic/append_message.py);
- when they run out, StorageUnavailableError: 503 with Retry-After, and nothing half written."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from chatvault import deadline
from chatvault.dal.clients import client
from chatvault.dal.items import ChatItem
from chatvault.errors import StorageUnavailableError

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "SlowDown",
        "RequestTimeout",
    }
)


def _code(exc: BaseException) -> str | None:
    if isinstance(exc, PynamoDBException):
        return exc.cause_response_code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_transient(exc: BaseException) -> bool:
    if _code(exc) in TRANSIENT_CODES:
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code in ("TransactionConflict", "ThrottlingError") for r in reasons)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, StorageUnavailableError) or not is_transient(exc):
        return exc
    unavailable = StorageUnavailableError()
    unavailable.__cause__ = exc
    return unavailable


CONDITION_FAILED = "ConditionalCheckFailed"


def any_condition_failure(exc: Exception) -> bool:
    """Was a transaction refused because some item failed its condition (not for a fault)?"""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(reason is not None and reason.code == CONDITION_FAILED for reason in reasons)


def condition_failure(exc: Exception, index: int | None) -> Any:
    """The cancellation reason of item `index` of a refused transaction when it failed its condition,
    else None. PynamoDB sends condition checks, deletes, puts and updates in that order, each in call
    order."""
    reasons = list(getattr(exc, "cancellation_reasons", None) or [])
    reason = reasons[index] if index is not None and index < len(reasons) else None
    return reason if reason is not None and reason.code == CONDITION_FAILED else None


def storage_errors[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Turn a transient storage failure that survived botocore's retries into StorageUnavailableError
    (for generators too: their failures happen while iterating)."""
    if inspect.isgeneratorfunction(func):

        @wraps(func)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                yield from func(*args, **kwargs)  # type: ignore[misc]
            except Exception as exc:
                raise _translate(exc) from exc

        return generator  # type: ignore[return-value]

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        deadline.guard(ChatItem._get_connection().connection.client)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc

    return wrapper


BATCH_ATTEMPTS = 8
TRANSACTION_ATTEMPTS = 6
APPEND_ATTEMPTS = 12


def pause(attempt: int, *, base: float = 0.01, cap: float = 0.2) -> None:
    """Sleep before the next attempt of one of our loops: exponential, capped, full jitter."""
    time.sleep(min(cap, base * 2**attempt) * random.random())  # noqa: S311 - jitter, not crypto


def _conflict(exc: TransactWriteError) -> bool:
    """Refused only because another request was writing the same items (never for a condition)."""
    return is_transient(exc) and not any_condition_failure(exc)


def transact(build: Callable[[TransactWrite], None]) -> None:
    """Run one TransactWriteItems, built by `build`, again when DynamoDB cancels it for a conflict with
    a concurrent transaction on the same items (a double-tapped panic button, an append racing a PATCH):
    botocore does not retry those. Each attempt is a fresh request; the deadline check still applies."""
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            with TransactWrite(connection=ChatItem._get_connection().connection) as tx:
                build(tx)
            return
        except TransactWriteError as exc:
            if attempt == TRANSACTION_ATTEMPTS - 1 or not _conflict(exc):
                raise
        pause(attempt)


def batch_write_all(table: str, requests: list[dict[str, Any]], attempts: int = BATCH_ATTEMPTS) -> int:
    """BatchWriteItem (≤25 requests) until DynamoDB has processed every request; returns the count."""
    pending = requests
    for attempt in range(attempts):
        response = client("dynamodb").batch_write_item(RequestItems={table: pending})
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if not pending:
            return len(requests)
        pause(attempt, base=0.02, cap=1.0)
    raise StorageUnavailableError()
