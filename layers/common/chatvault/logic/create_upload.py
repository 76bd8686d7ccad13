"""POST /sessions/{id}/uploads: a presigned S3 POST for one file in the session's folder.

The policy fixes the key `uploads/{session_id}/{upload_id}`, the content type and the size range
(1..the declared size, itself at most MaxUploadBytes); the form is valid for UPLOAD_URL_SECONDS.
The declared type must be one of AllowedUploadTypes, exactly as listed (the document declares them
as an enum, and browsers report types in lowercase).
One transaction counts the upload on the session and writes its record (`pending` until the bucket's
ObjectCreated event confirms it: logic/confirm_upload.py), kept for the conversation's retention;
signing is local."""

from __future__ import annotations

import uuid
from datetime import timedelta

from chatvault.core import clock
from chatvault.core.errors import ValidationFailedError
from chatvault.core.observability import metrics
from chatvault.core.settings import get_settings
from chatvault.dal import sessions, uploads
from chatvault.logic.rules.access import Caller, principal_of, session_id_from_path
from chatvault.logic.rules.limits import refusals_audited
from chatvault.logic.rules.session_state import raise_refusal
from chatvault.models.api import CreateUploadRequest, UploadOut
from chatvault.models.domain import AuditEntry, RateCharge, UploadRecord


def create_upload(raw_session_id: str, request: CreateUploadRequest, caller: Caller) -> UploadOut:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    if request.size > settings.max_upload_bytes:
        raise ValidationFailedError("body.size", f"must be at most {settings.max_upload_bytes} bytes")
    if request.content_type not in settings.allowed_upload_types:
        raise ValidationFailedError(
            "body.content_type", "must be one of " + ", ".join(settings.allowed_upload_types)
        )
    at = clock.now()
    upload_id = str(uuid.uuid4())
    charge = RateCharge(
        action="create_upload", client=caller.fingerprint, at=at, per_minute=settings.upload_limit_per_minute
    )
    entry = AuditEntry(
        session_id=session_id,
        event="upload_issued",
        at=at,
        actor=caller.fingerprint,
        details={"upload_id": upload_id, "max_bytes": request.size},
    )
    record = UploadRecord(
        session_id=session_id,
        upload_id=upload_id,
        content_type=request.content_type,
        size=request.size,
        status="pending",
        created_at=at,
        expires_at=at,  # the storage sets it: the conversation's retention after `at`
    )
    kept = timedelta(seconds=settings.retention_seconds)
    with refusals_audited(charge):
        recorded = sessions.record_upload(
            session_id, principal, at, charge, entry, upload=record, retention=kept
        )
        if recorded is None:
            raise_refusal(session_id, principal, at)

    key = uploads.key_for(session_id, upload_id)
    post = uploads.presigned_post(key, request.content_type, request.size, settings.upload_url_seconds)
    metrics.add_metric(name="UploadsIssued", unit="Count", value=1)
    return UploadOut(
        upload_id=upload_id,
        key=key,
        url=post["url"],
        fields={k: str(v) for k, v in post["fields"].items()},
        expires_at=clock.iso(at + timedelta(seconds=settings.upload_url_seconds)),
        max_bytes=request.size,
    )
