"""Per-client rate limits, counted in the limits table: one item per (action, client, minute),
`n` incremented under the condition `n < limit`, removed by TTL two minutes after its window.
The charge rides in the same transaction as the write it limits: a refused request counts nothing
and writes nothing, and a limited request costs no extra round trip."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chatvault.dal.items import TableMeta, TableName
from chatvault.dal.transaction import Transaction
from chatvault.models.domain import RateCharge

CHARGE = "charge"  # the charge's name in the transaction it rides in


class LimitItem(Model):
    class Meta(TableMeta):
        table_name = TableName("limits_table")

    pk = UnicodeAttribute(hash_key=True)
    n = NumberAttribute(default=0)
    expires_at = TTLAttribute()


def add_charge(tx: Transaction, charge: RateCharge) -> None:
    """Add the counter update to a transaction, as item CHARGE: refused when the client is over."""
    item = LimitItem(f"{charge.action}#{charge.client}#{charge.window}")
    tx.update(
        CHARGE,
        item,
        [
            LimitItem.n.add(1),
            LimitItem.expires_at.set(datetime.fromtimestamp((charge.window + 3) * 60, tz=UTC)),
        ],
        condition=LimitItem.n.does_not_exist() | (LimitItem.n < charge.per_minute),
    )
