"""Export objects in the uploads bucket, under `exports/{session_id}/{export_id}.{json|md}`: an export
too large for one Lambda response is written here and answered as a short-lived link. They are
short-lived by three means: the link (EXPORT_URL_SECONDS), the sweep (deletes every export older than
EXPORT_MAX_AGE_MINUTES, so within the hour), and the bucket's lifecycle rule on `exports/` (1 day,
S3's smallest expiry: the backstop). The panic button erases a session's exports with its files."""

from __future__ import annotations

import re
from datetime import datetime

from chatvault.bounds import UUID_PATTERN
from chatvault.dal import uploads
from chatvault.errors import StorageUnavailableError

EXPORTS_PREFIX = "exports/"
_EXPORT_KEY = re.compile(f"^exports/{UUID_PATTERN}/")


def key_for(session_id: str, export_id: str, extension: str) -> str:
    return f"{EXPORTS_PREFIX}{session_id}/{export_id}.{extension}"


def write(key: str, body: bytes, content_type: str) -> None:
    uploads.put(key, body, content_type)


def link(key: str, expires_in: int) -> str:
    return uploads.presigned_get(key, expires_in)


def erase_session_exports(session_id: str) -> int:
    """Delete every export object of the session; returns how many there were."""
    keys = [stored.key for stored in uploads.objects(f"{EXPORTS_PREFIX}{session_id}/")]
    if keys and uploads.delete_keys(keys):
        raise StorageUnavailableError("Some exports could not be deleted yet; retry the delete.")
    return len(keys)


def stale(before: datetime) -> list[str]:
    """Keys of export objects written before `before` (keys outside `exports/<uuid>/` are not ours)."""
    return [
        stored.key
        for stored in uploads.objects(EXPORTS_PREFIX)
        if _EXPORT_KEY.match(stored.key) and stored.last_modified < before
    ]
