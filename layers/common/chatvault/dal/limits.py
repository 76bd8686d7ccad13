"""Rate limits, counted in the limits table. Per client: one item per (action, client, minute),
`n` incremented under the condition `n < limit`, removed by TTL two minutes after its window.
The charge rides in the same transaction as the write it limits: a refused request counts nothing
and writes nothing, and a limited request costs no extra round trip. Per session: exports an hour
(`charge_export`), one conditional write before the export reads anything."""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from chatvault.dal.items import TableMeta, TableName
from chatvault.dal.retry import CONDITION_CHECK_FAILED, storage_errors
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


@storage_errors
def charge_export(session_id: str, at: datetime, per_hour: int) -> bool:
    """Count one export of the session in the current hour (ExportRateLimit): an export re-reads the
    whole history, so a session may be exported `per_hour` times an hour. One conditional UpdateItem
    (1 write unit); False, with nothing counted, when the session is over."""
    hour = int(at.timestamp()) // 3600
    item = LimitItem(f"export#{session_id}#{hour}")
    try:
        item.update(
            actions=[
                LimitItem.n.add(1),
                LimitItem.expires_at.set(datetime.fromtimestamp((hour + 2) * 3600, tz=UTC)),
            ],
            condition=LimitItem.n.does_not_exist() | (LimitItem.n < per_hour),
        )
    except UpdateError as exc:
        if exc.cause_response_code == CONDITION_CHECK_FAILED:
            return False
        raise
    return True
