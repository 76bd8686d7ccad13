"""Write transactions, built in one place and refused by name.

Each item of a transaction is added under a name ("session", "message", "charge", ...). DynamoDB
answers a cancelled transaction with one reason per item, in the order the items were sent, and
PynamoDB's TransactWrite sends deletes, then puts, then updates (after condition checks, which the
service does not use), each kind in the order it was added. `Transaction` keeps its names in that
same order, so a refusal is read as `refused.failed("session")`, never by position.
tests/unit/test_transaction.py pins that order against DynamoDB's answer: a PynamoDB that sent items
in another order fails it rather than having a refusal misread.

`commit()` also retries a transaction that DynamoDB cancelled only because another transaction was
writing the same items (botocore does not retry those; dal/aws/retry.py describes the whole policy)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chatvault.dal.aws import connection
from chatvault.dal.aws.items import ChatItem
from chatvault.dal.aws.retry import TRANSACTION_ATTEMPTS, is_transient, pause

CONDITION_FAILED = "ConditionalCheckFailed"
SEND_ORDER = ("delete", "save", "update")  # as PynamoDB sends them, each kind in call order


class Refused(Exception):
    """The transaction was cancelled because at least one item failed its condition; nothing was
    written. `reasons` maps each item's name to DynamoDB's reason (None for items that passed)."""

    def __init__(self, reasons: dict[str, Any]) -> None:
        super().__init__(f"transaction refused: {sorted(n for n, r in reasons.items() if r is not None)}")
        self.reasons = reasons

    def failed(self, name: str) -> Any:
        """The reason of item `name` if it failed its condition, else None."""
        reason = self.reasons.get(name)
        return reason if reason is not None and reason.code == CONDITION_FAILED else None

    def old[M: Model](self, name: str, model: type[M]) -> M | None:
        """Item `name` as it was when it failed its condition (sent with return_values="ALL_OLD");
        None when it passed, or did not exist."""
        reason = self.failed(name)
        return model.from_raw_data(reason.raw_item) if reason is not None and reason.raw_item else None


class Transaction:
    """One TransactWriteItems, its items added by name."""

    def __init__(self) -> None:
        self._items: dict[str, list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = {
            k: [] for k in SEND_ORDER
        }

    @property
    def names(self) -> list[str]:
        """The items' names in the order DynamoDB receives them (and answers their reasons)."""
        return [name for kind in SEND_ORDER for name, _, _ in self._items[kind]]

    def _add(self, kind: str, name: str, *args: Any, **kwargs: Any) -> None:
        if name in self.names:
            raise ValueError(f"two items named {name!r} in one transaction")
        self._items[kind].append((name, args, kwargs))

    def save(
        self, name: str, item: Model, *, condition: Condition | None = None, return_values: str | None = None
    ) -> None:
        self._add("save", name, item, condition=condition, return_values=return_values)

    def update(
        self,
        name: str,
        item: Model,
        actions: list[Any],
        *,
        condition: Condition | None = None,
        return_values: str | None = None,
    ) -> None:
        self._add("update", name, item, actions=actions, condition=condition, return_values=return_values)

    def delete(self, name: str, item: Model, *, condition: Condition | None = None) -> None:
        self._add("delete", name, item, condition=condition)

    def send(self) -> None:
        """One attempt. Refused when an item failed its condition; a fault (a conflict with another
        transaction, throttling) raises PynamoDB's TransactWriteError."""
        try:
            with TransactWrite(connection=connection.of(ChatItem)) as tx:
                for kind in SEND_ORDER:
                    for _, args, kwargs in self._items[kind]:
                        getattr(tx, kind)(*args, **kwargs)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            if any(r is not None and r.code == CONDITION_FAILED for r in reasons):
                raise Refused(dict(zip(self.names, reasons, strict=False))) from exc
            raise

    def committed(self, *refusable: str) -> bool:
        """Commit: True when written, False when the condition of one of these named items refused it
        (an answer the caller expects); a refusal by any other item raises Refused."""
        try:
            self.commit()
        except Refused as refused:
            if any(refused.failed(name) for name in refusable):
                return False
            raise
        return True

    def commit(self) -> None:
        """Send, again when DynamoDB cancelled it only for a conflict with a concurrent transaction on
        the same items (a double-tapped panic button, an append racing a PATCH). Each attempt is a
        fresh request; the deadline checks still apply."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self.send()
                return
            except TransactWriteError as exc:
                if attempt == TRANSACTION_ATTEMPTS - 1 or not is_transient(exc):
                    raise
            pause(attempt)
