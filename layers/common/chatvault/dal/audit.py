"""The audit trail: one item per lifecycle event in the audit table, `sk = time#event`, so one Query
returns a session's trail, also after the session is erased. TTL: AUDIT_RETENTION_DAYS.

The partition key is pseudonymous: `s#<HMAC of the session id>` (or `c#<client fingerprint>` for a
refusal that concerns no session), keyed by the deployment's secret (dal/secret.py). Whoever holds the
secret and a session id can find its trail; the table itself names no session, so after the panic
button no table holds the session's id.

Refusals (429, a create's 409) are not one item each: a client at its limit would write one a
request, each kept for the audit retention. They are one item per client, action, event and minute
(`sk = minute#event#action`, a deterministic key), `times` saying how many there were
(record_refusal)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chatvault.core.clock import iso
from chatvault.core.settings import get_settings
from chatvault.dal import secret
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import TableMeta, TableName
from chatvault.dal.aws.retry import storage_errors, write_batch, written
from chatvault.models.domain import AuditEntry


class AuditItem(Model):
    class Meta(TableMeta):
        table_name = TableName("audit_table")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute(null=True)
    details: MapAttribute[str, Any] = MapAttribute(default=dict)
    times = NumberAttribute(null=True)  # a refusal's item: how many in its minute
    expires_at = TTLAttribute()


def subject_of(session_id: str) -> str:
    return "s#" + secret.session_subject(session_id)


def _key(entry: AuditEntry) -> str:
    return subject_of(entry.session_id) if entry.session_id else f"c#{entry.actor or 'unknown'}"


def item_of(entry: AuditEntry) -> AuditItem:
    """The item for an entry (to save alone, or inside another operation's transaction)."""
    return AuditItem(
        _key(entry),
        f"{iso(entry.at)}#{entry.event}#{secrets.token_hex(4)}",
        event=entry.event,
        at=entry.at,
        actor=entry.actor,
        details=dict(entry.details),
        expires_at=entry.at + timedelta(days=get_settings().audit_retention_days),
    )


@storage_errors
def record(entry: AuditEntry) -> None:
    connection.of(AuditItem)
    item_of(entry).save()


@storage_errors
def record_refusal(entry: AuditEntry, times: int) -> None:
    """A client's refusals of one action and event in one minute, as one item: `times` is how many
    there have been (counted in the limits table: dal/limits.py, count_refusal), `at` the minute.
    One PutItem, conditioned so that a put carrying a smaller count (a concurrent refusal that
    arrived late) does not replace a larger one. (Not an UpdateItem adding to the item's count: the
    functions that refuse may only put items in the audit table, as every other audit write does.)"""
    connection.of(AuditItem)
    minute = datetime.fromtimestamp(int(entry.at.timestamp()) // 60 * 60, tz=UTC)
    action = str(entry.details.get("action", ""))
    item = AuditItem(
        _key(entry),
        f"{iso(minute)}#{entry.event}#{action}",
        event=entry.event,
        at=minute,
        actor=entry.actor,
        details=dict(entry.details),
        times=times,
        expires_at=minute + timedelta(days=get_settings().audit_retention_days),
    )
    # refused: a concurrent refusal already wrote a larger count
    written(lambda: item.save(condition=AuditItem.pk.does_not_exist() | (AuditItem.times < times)))


@storage_errors
def record_many(entries: list[AuditEntry]) -> None:
    """25 entries a BatchWriteItem."""
    write_batch(AuditItem, puts=[item_of(e) for e in entries])


@storage_errors
def trail(session_id: str) -> list[AuditEntry]:
    """A session's events, oldest first, in one Query (pages followed if a trail is very long)."""
    connection.of(AuditItem)
    return [
        AuditEntry.model_validate(
            {
                "session_id": session_id,
                "event": item.event,
                "at": item.at,
                "actor": item.actor,
                "details": _plain(item.details),
            }
        )
        for item in AuditItem.query(subject_of(session_id))
    ]


@storage_errors
def sweep_reports(last: int) -> list[dict[str, Any]]:
    """The orphan sweep's last reports, newest first (one entry a run, under `c#sweep`)."""
    connection.of(AuditItem)
    items = AuditItem.query("c#sweep", scan_index_forward=False, limit=last)
    return [{"at": item.at, **_plain(item.details)} for item in items if item.event == "sweep_finished"]


def _plain(details: Any) -> dict[str, Any]:
    """A raw MapAttribute reads back as a MapAttribute; a freshly assigned one is still a dict."""
    raw = details.as_dict() if isinstance(details, MapAttribute) else details  # type: ignore[no-untyped-call]
    return dict(raw or {})
