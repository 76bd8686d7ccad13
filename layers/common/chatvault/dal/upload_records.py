"""Upload records in the sessions table (`U#<upload_id>` in the session's partition, keys.py): what was
declared for an upload and whether its object has reached the bucket. They live beside the messages,
so the panic button's one Query of the partition erases them too.

Reads come with the session item that authorizes the reader: one strongly consistent BatchGetItem
for one upload, and for a page a Query with a GetItem of the session sent concurrently (one round
trip of latency, as for pages of history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chatvault.dal import sessions
from chatvault.dal.aws import connection, side_reads
from chatvault.dal.aws.items import ChatItem, SessionItem, UploadItem
from chatvault.dal.aws.keys import LAST_UPLOAD, SESSION_SK, UPLOAD_PREFIX
from chatvault.dal.aws.retry import storage_errors, written
from chatvault.dal.session_items import as_stored, record_of
from chatvault.models.domain import SessionRecord, UploadRecord


def record_of_item(item: UploadItem) -> UploadRecord:
    return UploadRecord(
        session_id=item.pk,
        upload_id=item.sk.removeprefix(UPLOAD_PREFIX),
        content_type=item.content_type,
        size=int(item.size),
        status=item.status,  # type: ignore[arg-type]  # written by this module: pending or stored
        created_at=item.created_at,
        expires_at=as_stored(item.expires_at),
    )


@storage_errors
def with_session(session_id: str, upload_id: str) -> tuple[SessionRecord | None, UploadRecord | None]:
    """The session item and the upload, in one strongly consistent BatchGetItem."""
    head: SessionRecord | None = None
    upload: UploadRecord | None = None
    for item in ChatItem.batch_get(
        [(session_id, SESSION_SK), (session_id, UPLOAD_PREFIX + upload_id)], consistent_read=True
    ):
        if isinstance(item, SessionItem):
            head = record_of(item)
        elif isinstance(item, UploadItem):
            upload = record_of_item(item)
    return head, upload


@storage_errors
def page(
    session_id: str, limit: int, after: str | None
) -> tuple[SessionRecord | None, list[UploadRecord], str | None]:
    """A page of the session's uploads (oldest id first: ids are random, so the order is stable, not
    chronological), the session item, and the upload id to continue after (None: no more)."""
    head = side_reads.concurrently(sessions.state, session_id)
    connection.of(UploadItem)
    results = UploadItem.query(
        session_id,
        UploadItem.sk.between(UPLOAD_PREFIX, LAST_UPLOAD),
        consistent_read=True,
        limit=limit,
        page_size=limit,
        last_evaluated_key=(
            {"pk": {"S": session_id}, "sk": {"S": UPLOAD_PREFIX + after}} if after is not None else None
        ),
    )
    uploads = [record_of_item(item) for item in results]
    more = results.last_evaluated_key is not None
    return head.result(), uploads, uploads[-1].upload_id if more and uploads else None


@storage_errors
def all_of(session_id: str) -> Iterator[UploadRecord]:
    """Every upload of the session: one strongly consistent Query a page (1 MB)."""
    connection.of(UploadItem)
    for item in UploadItem.query(
        session_id, UploadItem.sk.between(UPLOAD_PREFIX, LAST_UPLOAD), consistent_read=True
    ):
        yield record_of_item(item)


@storage_errors
def get(session_id: str, upload_id: str) -> UploadRecord | None:
    try:
        return record_of_item(UploadItem.get(session_id, UPLOAD_PREFIX + upload_id, consistent_read=True))
    except DoesNotExist:
        return None


@storage_errors
def mark_stored(session_id: str, upload_id: str, size: int, at: datetime) -> bool:
    """The upload's object is in the bucket, with this size: one conditional UpdateItem. False when
    the record is gone (the session was erased meanwhile, or the record expired)."""
    item = UploadItem(session_id, UPLOAD_PREFIX + upload_id)
    return written(
        lambda: item.update(
            actions=[UploadItem.status.set("stored"), UploadItem.size.set(size)],
            condition=UploadItem.pk.exists() & (UploadItem.expires_at > at),
        )
    )


@storage_errors
def remove(session_id: str, upload_id: str) -> None:
    """Forget an upload whose object was refused (deleted)."""
    UploadItem(session_id, UPLOAD_PREFIX + upload_id).delete()
