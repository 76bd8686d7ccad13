"""An object reached the uploads bucket (its ObjectCreated event, through EventBridge): confirm the
upload it belongs to, or delete it.

The object is checked against its upload's record (HeadObject, GetItem): its Content-Type must be
the declared one and its size within the declared 1..size (the presigned POST's policy pins both, so
a mismatch means the object did not come through the form: a key written some other way, a record
gone because the session was erased while the file was on its way). A match is `stored`, with the
object's real size; a mismatch is deleted, and its record with it. Keys that are not
`uploads/<uuid>/<uuid>` are not ours and are left alone. Events arrive at least once: a repeat
finds the object stored (nothing changes) or already deleted (nothing to do)."""

from __future__ import annotations

from pydantic import BaseModel

from chatvault import clock
from chatvault.dal import upload_records, uploads
from chatvault.observability import logger, metrics
from chatvault.settings import get_settings


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
        facts = uploads.head(key)
        if facts is None:  # deleted since (the panic button, a repeat of a refused object's event)
            report.ignored += 1
            continue
        at = clock.now()
        record = upload_records.get(session_id, upload_id)
        reason = None
        if record is None or record.expires_at <= at:
            reason = "no_upload"
        elif facts.content_type.lower() != record.content_type:
            reason = "content_type"
        elif not 1 <= facts.size <= record.size:
            reason = "size"
        elif not upload_records.mark_stored(session_id, upload_id, facts.size, at):
            reason = "no_upload"  # erased while we looked
        ids_only = {"session_id": session_id, "upload_id": upload_id}
        if reason is None:
            report.stored += 1
            logger.info("upload stored", extra={**ids_only, "size": facts.size})
            continue
        uploads.delete_key(key)
        if record is not None:
            upload_records.remove(session_id, upload_id)
        report.refused += 1
        logger.warning("upload refused and deleted", extra={**ids_only, "reason": reason})
    metrics.add_metric(name="UploadsStored", unit="Count", value=report.stored)
    metrics.add_metric(name="UploadsRefused", unit="Count", value=report.refused)
    return report
