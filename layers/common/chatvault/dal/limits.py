"""Rate limits, counted in the limits table. Per client: one item per (action, client, minute),
`n` incremented under the condition `n < limit`, removed by TTL two minutes after its window.
The charge rides in the same transaction as the write it limits, so a limited request costs no extra
round trip. A request refused with 429 is not charged and writes nothing of its own; one refused for
another reason that must still be counted (a create whose session id is taken: the 409 would
otherwise be a free probe of which ids exist) is charged alone afterwards (`charge_alone`).

The same item counts the client's audited refusals of that minute, one number per event
(`count_refusal`), so that the audit trail can hold one item per client, action, event and minute
with its count (dal/audit.py, record_refusal) instead of one item per refusal.

Per session, an hour (`charge_hourly`): exports, feedback, share links and changes of retention, one
conditional write before the request reads or writes anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from chatvault.dal.aws import connection
from chatvault.dal.aws.items import TableMeta, TableName
from chatvault.dal.aws.retry import storage_errors, written
from chatvault.dal.aws.transaction import Transaction
from chatvault.models.domain import RateCharge, RefusalEvent

CHARGE = "charge"  # the charge's name in the transaction it rides in


class LimitItem(Model):
    class Meta(TableMeta):
        table_name = TableName("limits_table")

    pk = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(default=0)
    # refusals of the minute, by event
    rate_limited = NumberAttribute(null=True)
    session_exists = NumberAttribute(null=True)
    expires_at = TTLAttribute()


def _item(charge: RateCharge) -> LimitItem:
    return LimitItem(f"{charge.action}#{charge.client}#{charge.window}")


def _expiry(charge: RateCharge) -> Any:
    return LimitItem.expires_at.set(datetime.fromtimestamp((charge.window + 3) * 60, tz=UTC))


def _counter(charge: RateCharge) -> tuple[LimitItem, list[Any], Condition]:
    """The counter's item, its update and the condition that refuses a client over the limit."""
    actions = [LimitItem.n.add(1), _expiry(charge)]
    return _item(charge), actions, LimitItem.n.does_not_exist() | (LimitItem.n < charge.per_minute)


def add_charge(tx: Transaction, charge: RateCharge) -> None:
    """Add the counter update to a transaction, as item CHARGE: refused when the client is over."""
    item, actions, condition = _counter(charge)
    tx.update(CHARGE, item, actions, condition=condition)


@storage_errors
def charge_alone(charge: RateCharge) -> bool:
    """Count a request whose own write was refused, in one conditional UpdateItem: False when the
    client is over the limit (the request is then refused as over it, 429)."""
    return _counted(*_counter(charge))


def _counted(item: LimitItem, actions: list[Any], condition: Condition) -> bool:
    """One conditional UpdateItem of a counter: False, with nothing counted, when it is refused."""
    connection.of(LimitItem)
    return written(lambda: item.update(actions=actions, condition=condition))


_REFUSALS: dict[RefusalEvent, NumberAttribute] = {
    "rate_limited": LimitItem.rate_limited,
    "session_exists": LimitItem.session_exists,
}


@storage_errors
def count_refusal(charge: RateCharge, event: RefusalEvent) -> int:
    """Count one refusal of the charged request in its minute's item (one UpdateItem, no condition);
    how many of this event the client has had in this minute, this one included."""
    connection.of(LimitItem)
    item = _item(charge)
    item.update(actions=[_REFUSALS[event].add(1), _expiry(charge)])
    return int(getattr(item, event))


@storage_errors
def charge_hourly(action: str, session_id: str, at: datetime, per_hour: int) -> bool:
    """Count one `action` on the session in the current hour, at most `per_hour`: an export
    (ExportRateLimit: it re-reads the whole history), feedback, a share link, a change of retention.
    One conditional UpdateItem (1 write unit); False, with nothing counted, when the session is over."""
    hour = int(at.timestamp()) // 3600
    return _counted(
        LimitItem(f"{action}#{session_id}#{hour}"),
        [LimitItem.n.add(1), LimitItem.expires_at.set(datetime.fromtimestamp((hour + 2) * 3600, tz=UTC))],
        LimitItem.n.does_not_exist() | (LimitItem.n < per_hour),
    )
