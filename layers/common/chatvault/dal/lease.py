"""One holder at a time for background work (the sweep), without reserved concurrency (which a new
AWS account cannot grant: its quota is 10, and Lambda keeps 10 unreserved).

A lease is one item in the limits table, `pk = lease#<name>`: taken with one conditional write (free,
lapsed, or already this holder's), given back with another (only by its holder). A holder that dies
keeps it until `until`, which is set to when its Lambda would have been stopped anyway; the TTL
removes the item a day later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from chatvault.core.clock import millis
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import TableMeta, TableName
from chatvault.dal.aws.retry import storage_errors, written


class LeaseItem(Model):
    class Meta(TableMeta):
        table_name = TableName("limits_table")

    pk = UnicodeAttribute(hash_key=True)
    holder = UnicodeAttribute()
    until = NumberAttribute()  # epoch milliseconds: when the lease lapses
    expires_at = TTLAttribute()


@storage_errors
def take(name: str, holder: str, at: datetime, lasting: timedelta) -> bool:
    """Take the lease until `at + lasting`: True when it is now this holder's, False when another
    holds it."""
    connection.of(LeaseItem)
    until = at + lasting
    lease = LeaseItem(f"lease#{name}")
    return written(
        lambda: lease.update(
            actions=[
                LeaseItem.holder.set(holder),
                LeaseItem.until.set(millis(until)),
                LeaseItem.expires_at.set(until + timedelta(days=1)),
            ],
            condition=LeaseItem.pk.does_not_exist()
            | (LeaseItem.until < millis(at))
            | (LeaseItem.holder == holder),
        )
    )


@storage_errors
def give_back(name: str, holder: str) -> None:
    """Free the lease if this holder still has it (after it lapsed, another may have taken it)."""
    connection.of(LeaseItem)
    lease = LeaseItem(f"lease#{name}")
    written(lambda: lease.delete(condition=LeaseItem.holder == holder))  # refused: not this holder's now


def holder_of(name: str) -> tuple[str, datetime] | None:
    """Who holds the lease and until when (None when free); for tests and operators."""
    try:
        item = LeaseItem.get(f"lease#{name}", consistent_read=True)
    except LeaseItem.DoesNotExist:
        return None
    return item.holder, datetime.fromtimestamp(int(item.until) / 1000, tz=UTC)
