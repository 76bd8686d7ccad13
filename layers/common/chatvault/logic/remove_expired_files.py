"""Delete an upload's file when DynamoDB's TTL removes its record (RemoveExpiredFilesFunction, the
sessions table's stream).

An upload's record is kept for its conversation's retention after the upload was issued
(logic/create_upload.py; a PATCH of the retention moves it: dal/retention.py). Reads stop showing the
upload then (`kept`); DynamoDB's TTL removes the record later (typically within two days), and that
removal, on the table's keys-only stream, is what reaches this function: its filter (template.yaml)
lets through only removals made by the TTL process (userIdentity dynamodb.amazonaws.com) of upload
records (`sk = U#<upload_id>`), so no write of the service invokes it. Each file,
`uploads/<session_id>/<upload_id>`, is deleted, a batch's in one DeleteObjects call; a file never sent,
or already gone (an erase, the sweep), is no error. Without it a file would stay until its conversation
expired (the orphan sweep) or the bucket's lifecycle rule (RetentionHours, in whole days) removed it,
whichever came first; that rule stays the backstop.

A record that names no upload of ours (not two UUIDs) is passed over. A delete that S3 refuses raises:
Lambda retries the batch (deleting again is harmless), and the function's Errors alarm says so."""

from __future__ import annotations

from dataclasses import dataclass

from chatvault.core.errors import StorageUnavailableError
from chatvault.core.observability import logger, metrics
from chatvault.dal import uploads
from chatvault.dal.aws.keys import UPLOAD_PREFIX


@dataclass(frozen=True)
class ExpiredRecord:
    """A stream record's keys: the session's id and the removed item's sort key."""

    session_id: str
    sort_key: str


def remove_expired_files(records: list[ExpiredRecord]) -> int:
    """Delete the files of the expired upload records among `records`; how many were asked for."""
    keys = []
    for record in records:
        if not record.sort_key.startswith(UPLOAD_PREFIX):
            continue
        key = uploads.key_for(record.session_id, record.sort_key.removeprefix(UPLOAD_PREFIX))
        if uploads.upload_of(key) is not None:  # two UUIDs: a key this service issues forms for
            keys.append(key)
    if len(keys) < len(records):
        logger.warning("stream records that name no upload", extra={"passed_over": len(records) - len(keys)})
    if keys and uploads.delete_keys(keys):
        raise StorageUnavailableError("Some expired files could not be deleted yet; the batch is retried.")
    metrics.add_metric(name="ExpiredFilesRemoved", unit="Count", value=len(keys))
    return len(keys)
