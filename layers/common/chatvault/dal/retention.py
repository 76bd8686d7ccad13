"""A conversation's retention applied to what it holds (PATCH `retention_hours`, logic/update_session.py).

Every message and upload of a conversation is kept its retention after it was written, so a changed
retention moves each one's TTL: to `written + retention` (a message-id marker's to its message's; a
share link's never past its own ShareHours limit), and an item already older than that is deleted
now (an upload's file with it). One strongly
consistent Query of the partition (keys and times only) finds them; the writes go out in parallel:
an UpdateItem per moved TTL (conditioned on the item still existing: a TTL move never brings back an
item another request deleted) and BatchWriteItems of 25 deletes. What is already past its TTL is
left to DynamoDB's TTL: a longer retention never brings expired data back.

Cost: one write per item whose expiry changes, each billed on the item's size (an UpdateItem costs
what a put of the item would): the price of a rare request, paid once. Until the pass is done the
read rule (models/domain.py `kept`) already hides what the new retention passed, and a pass that
fails is answered 503: the same PATCH sent again finishes it (it moves only what is still off)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.models import Model

from chatvault.core.errors import StorageUnavailableError
from chatvault.dal import uploads
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import TableMeta, TableName
from chatvault.dal.aws.keys import MESSAGE_ID_PREFIX, MESSAGE_PREFIX, SHARE_PREFIX, UPLOAD_PREFIX
from chatvault.dal.aws.retry import storage_errors, write_batch, written

WORKERS = 8


class Timed(Model):
    """Any item of the sessions table, by its keys and times (not discriminated: the Query sees every
    kind)."""

    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    created_at = UTCDateTimeAttribute(null=True)  # messages, uploads, share links
    position = UnicodeAttribute(null=True)  # a message-id marker: its message's position
    expires_at = TTLAttribute(null=True)
    limit_at = NumberAttribute(null=True)  # a share link: its ShareHours limit (epoch seconds)


def _written(item: Timed, messages: dict[str, datetime]) -> datetime | None:
    """When the item was written: its own time (a message, an upload) or its message's (a marker).
    None for the items whose TTL follows the session's (the session, its profile) and for a marker
    whose message is gone."""
    if item.sk.startswith((MESSAGE_PREFIX, UPLOAD_PREFIX, SHARE_PREFIX)):
        return item.created_at
    if item.sk.startswith(MESSAGE_ID_PREFIX) and item.position is not None:
        return messages.get(item.position)
    return None


@storage_errors
def apply(session_id: str, retention: timedelta, at: datetime) -> tuple[int, int]:
    """Move the TTL of each message, marker and upload of the session to its time plus `retention`;
    delete those that time has passed (and the files of such uploads). Returns (moved, deleted)."""
    connection.of(Timed)
    items = list(
        Timed.query(
            session_id,
            consistent_read=True,
            attributes_to_get=["pk", "sk", "created_at", "position", "expires_at", "limit_at"],
        )
    )
    messages = {
        item.sk.removeprefix(MESSAGE_PREFIX): item.created_at
        for item in items
        if item.sk.startswith(MESSAGE_PREFIX) and item.created_at is not None
    }
    moves: list[tuple[Timed, datetime]] = []
    deletes: list[Timed] = []
    for item in items:
        written = _written(item, messages)
        if written is None or item.expires_at is None or item.expires_at <= at:
            continue  # the session's own items, or already expired: never brought back
        expiry = datetime.fromtimestamp(int((written + retention).timestamp()), tz=at.tzinfo)
        if item.limit_at is not None:  # a share link: never past its own limit
            expiry = min(expiry, datetime.fromtimestamp(int(item.limit_at), tz=at.tzinfo))
        if expiry <= at:
            deletes.append(Timed(item.pk, item.sk))
        elif expiry != item.expires_at:
            moves.append((item, expiry))
    files = [
        uploads.key_for(session_id, d.sk.removeprefix(UPLOAD_PREFIX))
        for d in deletes
        if d.sk.startswith(UPLOAD_PREFIX)
    ]
    if files:  # before their records: a pass that fails here still finds them when sent again
        _delete_files(files)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(_move, item, expiry) for item, expiry in moves]
        futures += [pool.submit(_delete_items, deletes[i : i + 25]) for i in range(0, len(deletes), 25)]
        for future in futures:
            future.result()
    return len(moves), len(deletes)


def _move(item: Timed, expiry: datetime) -> None:
    # refused: deleted meanwhile (an erase, TTL), nothing to move
    written(lambda: item.update(actions=[Timed.expires_at.set(expiry)], condition=Timed.pk.exists()))


def _delete_items(items: list[Timed]) -> None:
    write_batch(Timed, deletes=items)


def _delete_files(keys: list[str]) -> None:
    if uploads.delete_keys(keys):
        raise StorageUnavailableError("Some files could not be deleted yet; retry the request.")
