"""An object reached the uploads bucket (its ObjectCreated event, through EventBridge): confirm the
upload it belongs to, or delete it.

The object is checked against its upload's record (GetItem, then HeadObject): its Content-Type must
be the declared one and its size within the declared 1..size (the presigned POST's policy pins both,
so a mismatch means the object did not come through the form). A match is `stored`, with the
object's real size; a mismatch is deleted, and its record with it. An object gone by the time it is
looked at (an erase racing the confirmation) is ignored: nothing is stored. HeadObject says so with
403, not 404, to a role that may not list the bucket (this one): both mean missing (dal/uploads.py),
never a failed event retried for an hour. An object with no live record behind it (a key written
some other way, or a file that arrived after its session was erased) is deleted without a look:
DeleteObject of a key that is already gone is no error. Keys that are not `uploads/<uuid>/<uuid>`
are not ours and are left alone. Events arrive at least once: a repeat finds the upload stored
(nothing changes) or its record gone (the delete is repeated, harmlessly); a refusal removes the
record before the object, so a retry after a crash between the two deletes the object as unclaimed."""

from __future__ import annotations

from pydantic import BaseModel

from chatvault.core import clock
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import get_settings
from chatvault.dal import upload_records, uploads


class ConfirmReport(BaseModel):
    stored: int = 0
    refused: int = 0
    ignored: int = 0


def confirm_upload(bucket: str, keys: list[str]) -> ConfirmReport:
    report = ConfirmReport()
    for key in keys:
        ids = uploads.upload_of(key) if bucket == get_settings().uploads_bucket else None
        if ids is None:
            report.ignored += 1
            logger.info("object is not an upload; left alone")
            continue
        session_id, upload_id = ids
        ids_only = {"session_id": session_id, "upload_id": upload_id}
        at = clock.now()
        record = upload_records.get(session_id, upload_id)
        if record is not None and record.expires_at > at and record.status == "stored":
            report.ignored += 1  # a repeated event
            continue
        reason = "no_upload"
        if record is not None and record.expires_at > at:
            facts = uploads.head(key)
            if facts is None:  # created, then gone before we looked: nothing is stored (yet)
                report.ignored += 1
                logger.info("object gone before it was looked at; ignored", extra=ids_only)
                continue
            reason = ""
            if facts.content_type.lower() != record.content_type:
                reason = "content_type"
            elif not 1 <= facts.size <= record.size:
                reason = "size"
            elif not upload_records.mark_stored(session_id, upload_id, facts.size, at):
                reason = "no_upload"  # erased while we looked
            else:
                report.stored += 1
                logger.info("upload stored", extra={**ids_only, "size": facts.size})
                continue
        if record is not None:  # the record first: a retry after a crash between the two finds none
            upload_records.remove(session_id, upload_id)
        uploads.delete_key(key)
        report.refused += 1
        logger.warning("upload refused and deleted", extra={**ids_only, "reason": reason})
    metrics.add_metric(name="UploadsStored", unit="Count", value=report.stored)
    metrics.add_metric(name="UploadsRefused", unit="Count", value=report.refused)
    return report
