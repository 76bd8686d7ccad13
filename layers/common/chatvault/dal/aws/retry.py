"""Storage faults in one place: what is worth retrying, how often, and what a caller sees when retries
run out.

The retry policy:
- every AWS request: botocore's standard mode, SDK_ATTEMPTS attempts (dal/aws/clients.py; PynamoDB's
  models through dal/aws/items.py's TableMeta), each attempt and each backoff sleep only while the
  invocation's deadline leaves time for it (deadline.py);
- what botocore does not retry, our loops retry, sleeping `pause(attempt)` (full jitter) between
  attempts: batch items DynamoDB left unprocessed (BATCH_ATTEMPTS, `write_batch`), transactions
  cancelled only for a conflict with another transaction (TRANSACTION_ATTEMPTS, dal/aws/transaction.py),
  and an append that lost the race for its position (APPEND_ATTEMPTS, dal/messages.py);
- when they run out, StorageUnavailableError: 503 with Retry-After, and nothing half written."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from botocore.exceptions import HTTPClientError
from pynamodb.exceptions import DeleteError, PutError, PynamoDBException, UpdateError
from pynamodb.models import Model

from chatvault.core.errors import StorageUnavailableError
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import ChatItem

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


# A single conditional write refused by its condition (a transaction's items say "ConditionalCheckFailed"
# in their cancellation reasons instead: dal/aws/transaction.py)
CONDITION_CHECK_FAILED = "ConditionalCheckFailedException"


def written(write: Callable[[], object]) -> bool:
    """One conditional write of one item: True when written, False when its condition refused it; any
    other failure raises. With Transaction.committed, the one way a storage module learns that a write
    was refused: a refusal is an answer (False, or what the module builds from it), never an error."""
    try:
        write()
    except (PutError, UpdateError, DeleteError) as exc:
        if not refused(exc):
            raise
        return False
    return True


def refused(exc: BaseException) -> bool:
    """Whether a single write failed because its condition refused it: PynamoDB's errors, and boto3's
    for the one caller that needs the item as it is now (ReturnValuesOnConditionCheckFailure)."""
    return _code(exc) == CONDITION_CHECK_FAILED


def _code(exc: BaseException) -> str | None:
    if isinstance(exc, PynamoDBException):
        # PynamoDB's cause_response_code fails on a cause without a response (a read timeout)
        return _code(exc.cause) if exc.cause is not None else None
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx, a transaction conflict, or no answer at all (a connection or read timeout
    that outlasted botocore's retries)."""
    if _code(exc) in TRANSIENT_CODES:
        return True
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    if isinstance(cause, HTTPClientError):
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code in ("TransactionConflict", "ThrottlingError") for r in reasons)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, StorageUnavailableError) or not is_transient(exc):
        return exc
    unavailable = StorageUnavailableError()
    unavailable.__cause__ = exc
    return unavailable


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
        connection.of(ChatItem)
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc

    return wrapper


BATCH_ATTEMPTS = 8
TRANSACTION_ATTEMPTS = 6
APPEND_ATTEMPTS = 12

# Jitter from the OS on every call, not from a generator seeded at import: under SnapStart every
# instance restored from one snapshot would otherwise draw the same "random" sleeps.
_jitter = random.SystemRandom()


def pause(attempt: int, *, base: float = 0.01, cap: float = 0.2) -> None:
    """Sleep before the next attempt of one of our loops: exponential, capped, full jitter."""
    time.sleep(min(cap, base * 2**attempt) * _jitter.random())


def write_batch[M: Model](model: type[M], puts: Sequence[M] = (), deletes: Sequence[M] = ()) -> int:
    """PynamoDB's BatchWrite (25 items a request; it resends what DynamoDB left unprocessed, at once,
    up to SDK_ATTEMPTS - 1 times, then gives up with PutError), resent whole after a pause while
    DynamoDB keeps leaving items unprocessed. Puts of the same item and deletes are idempotent, so a
    resent batch writes the same state. Returns how many items were written."""
    connection.of(model)
    for attempt in range(BATCH_ATTEMPTS):
        try:
            with model.batch_write() as batch:
                for item in puts:
                    batch.save(item)
                for item in deletes:
                    batch.delete(item)
            return len(puts) + len(deletes)
        except PutError as exc:
            if exc.cause is not None:  # a request that failed (after botocore's retries), not a leftover
                raise
        pause(attempt, base=0.02, cap=1.0)
    raise StorageUnavailableError()
