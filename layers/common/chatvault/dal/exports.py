"""Export objects in the uploads bucket, under `exports/{session_id}/{export_id}.{json|md}`: an export
too large for one Lambda response is written here and answered as a short-lived link. They are
short-lived by three means: the link (EXPORT_URL_SECONDS), the sweep (deletes every export older than
EXPORT_MAX_AGE_MINUTES, so within the hour), and the bucket's lifecycle rule on `exports/` (1 day,
S3's smallest expiry: the backstop). The panic button erases a session's exports with its files.

Every export object is sealed (seal.py, `chatvault.export.sealed/1`) under a key of its own that is
never stored: the export's answer carries it, this once. For a keyed session that key is derived from
the conversation's key and the object's name (seal.export_key), so once the conversation is erased
nobody can derive it again; for a legacy session (no key: logic/export_session.py) from a one-off
random key instead."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from chatvault.core import seal
from chatvault.core.bounds import UUID_PATTERN
from chatvault.core.errors import StorageUnavailableError
from chatvault.core.settings import get_settings
from chatvault.dal import uploads
from chatvault.dal.aws.clients import client
from chatvault.dal.aws.retry import storage_errors

EXPORTS_PREFIX = "exports/"
_EXPORT_KEY = re.compile(f"^exports/{UUID_PATTERN}/")
# An export object is written in parts of this size as it is encoded (S3's multipart upload; every
# part but the last must be at least 5 MiB), so an export holds at most one part in memory. A part is
# sent once its sealed bytes reach PART_BYTES (whole sealed chunks of seal.CHUNK_BYTES + 28 bytes: 8 or
# so a part, always at least PART_BYTES), and the last part ends with the last chunk (never empty).
PART_BYTES = 8 * 1024 * 1024
SEALED_CONTENT_TYPE = "application/octet-stream"  # what S3 serves the link with: sealed bytes


def key_for(session_id: str, export_id: str, extension: str) -> str:
    return f"{EXPORTS_PREFIX}{session_id}/{export_id}.{extension}"


class ExportObject:
    """An export object written part by part, sealed chunk by chunk under `sealing_key` (the object's
    own key, seal.export_key): `write` the plaintext as the export is encoded, then `close` (or `abort`
    on any failure, so no parts stay behind; a Lambda that dies mid-way leaves them to the bucket's
    lifecycle rule, which aborts incomplete uploads under `exports/` after a day). `size` counts the
    plaintext written; the object holds it sealed (seal.CHUNK_OVERHEAD more bytes a chunk)."""

    def __init__(self, key: str, sealing_key: bytes) -> None:
        self.key, self.content_type = key, SEALED_CONTENT_TYPE
        self.sealer = seal.ChunkSealer(sealing_key)
        self.parts: list[dict[str, Any]] = []
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.size = 0

    @property
    def chunk_bytes(self) -> int:
        return self.sealer.chunk_bytes

    @storage_errors
    def write(self, data: bytes) -> None:
        self.buffer += self.sealer.feed(data)
        self.size += len(data)
        if len(self.buffer) >= PART_BYTES:
            self._send_part()

    @storage_errors
    def close(self) -> None:
        self.buffer += self.sealer.end()
        if self.upload_id is None:  # it all fits one part: one PutObject
            uploads.put(self.key, bytes(self.buffer), self.content_type)
            return
        self._send_part()
        client("s3").complete_multipart_upload(
            Bucket=get_settings().uploads_bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            client("s3").abort_multipart_upload(
                Bucket=get_settings().uploads_bucket, Key=self.key, UploadId=self.upload_id
            )

    def _send_part(self) -> None:
        s3, bucket = client("s3"), get_settings().uploads_bucket
        if self.upload_id is None:
            started = s3.create_multipart_upload(Bucket=bucket, Key=self.key, ContentType=self.content_type)
            self.upload_id = started["UploadId"]
        number = len(self.parts) + 1
        sent = s3.upload_part(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=bytes(self.buffer)
        )
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number})
        self.buffer = bytearray()


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
