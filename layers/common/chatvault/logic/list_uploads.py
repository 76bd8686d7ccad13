"""GET /sessions/{id}/uploads: a page of the session's uploads (pending and stored), in one round
trip (a Query with the session's GetItem beside it). File names are not stored, so none is listed."""

from __future__ import annotations

from datetime import timedelta

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.dal import upload_records
from chatvault.logic.rules import cursor
from chatvault.logic.rules.access import (
    Caller,
    authorize_live,
    is_canonical_id,
    principal_of,
    session_id_from_path,
)
from chatvault.models.api import UploadInfoListOut, UploadInfoOut


def list_uploads(
    raw_session_id: str, caller: Caller, limit: int, raw_cursor: str | None
) -> UploadInfoListOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    scope = f"uploads:{session_id}"
    after = cursor.decode_field(scope, raw_cursor, "u", is_canonical_id)
    at = clock.now()
    head, uploads, last = upload_records.page(session_id, limit, after)
    record = authorize_live(head, principal, at)
    deployment = timedelta(seconds=get_settings().retention_seconds)
    return UploadInfoListOut(
        items=[
            UploadInfoOut.of(u) for u in uploads if record.keeps(u.created_at, u.expires_at, at, deployment)
        ],
        next_cursor=cursor.encode(scope, {"u": last} if last else None),
    )
