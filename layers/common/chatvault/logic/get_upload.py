"""GET /sessions/{id}/uploads/{upload_id}: one upload and, once its file is stored, a presigned GET of
it (DOWNLOAD_URL_SECONDS, 5 minutes). One BatchGetItem reads the session and the upload together;
signing is local. A pending upload, an unknown one and a non-UUID id are 404 `upload_not_found`
(after the session check, which answers 404 `session_not_found` as everywhere)."""

from __future__ import annotations

from datetime import timedelta

from chatvault.core import clock
from chatvault.core.errors import UploadNotFoundError
from chatvault.core.settings import get_settings
from chatvault.dal import upload_records, uploads
from chatvault.logic.rules.access import (
    Caller,
    authorize_live,
    is_canonical_id,
    principal_of,
    session_id_from_path,
)
from chatvault.models.api import UploadDownloadOut, UploadInfoOut


def get_upload(raw_session_id: str, raw_upload_id: str, caller: Caller) -> UploadDownloadOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    upload_id = raw_upload_id.strip().lower()
    if not is_canonical_id(upload_id):
        upload_id = "00000000-0000-0000-0000-000000000000"  # still check the session first
    at = clock.now()
    head, upload = upload_records.with_session(session_id, upload_id)
    record = authorize_live(head, principal, at)
    settings = get_settings()
    deployment = timedelta(seconds=settings.retention_seconds)
    if (
        upload is None
        or upload.status != "stored"
        or not record.keeps(upload.created_at, upload.expires_at, at, deployment)
    ):
        raise UploadNotFoundError()
    url = uploads.presigned_get(
        uploads.key_for(session_id, upload_id), settings.download_url_seconds, upload.content_type
    )
    return UploadDownloadOut(**UploadInfoOut.of(upload).model_dump(), download_url=url)
