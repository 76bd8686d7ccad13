"""GET /sessions/{id}/export: the whole conversation, for the person it belongs to (GDPR access and
portability), as JSON in the versioned export format (`chatvault.export/1`, docs/API.md: what an
import reads back) or as a Markdown transcript.

Reading costs stay proportional to the session: one BatchGetItem (session and profile), a Query per
page of history (250 messages; never a scan), one Query of the uploads, one
audit entry (the event, format and counts: never content). The export is encoded page by page as it
is read. When it would not fit one Lambda response (EXPORT_INLINE_BYTES, as the response carries
it, JSON-escaped; Lambda's limit is 6 MB) it is written to `exports/{session_id}/` and answered as a
link valid EXPORT_URL_SECONDS; the sweep deletes export objects within the hour, the bucket's
lifecycle rule after a day at the latest, and the panic button with the session.

The object is sealed (dal/exports.py): only the caller who asked for it can open it, with the key its
answer carries (`encryption`), this once. That key is derived from the conversation's key and the
object's name: it is never stored, logged or audited, and the answer is Cache-Control: no-store. A
legacy session (no key) seals its object under a key derived from a one-off random key, the same
format and the same answer: the bucket never holds an export in plaintext, and a leaked link alone
opens nothing.

Bounded memory: what would be answered inline is held (at most EXPORT_INLINE_BYTES); past that the
export is written to its object in parts as it is encoded (dal/exports.py, 8 MiB at a time), so even
the largest session the limits allow (MaxSessionMessages x MaxMessageChars) never sits in memory
whole. Bounded cost: a session may be exported ExportRateLimit times an hour (429 beyond, counted
before anything is read)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from chatvault.core import clock, seal
from chatvault.core.errors import SessionNotFoundError
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import get_settings
from chatvault.dal import (
    audit,
    conversation_keys,
    exports,
    messages,
    sessions,
    upload_records,
    uploads,
)
from chatvault.logic.rules.access import Caller, authorize_live, principal_of, session_id_from_path
from chatvault.logic.rules.limits import charge_session_hourly
from chatvault.models.api import (
    EXPORT_FORMAT,
    ExportedUploadOut,
    ExportEncryptionOut,
    ExportLinkOut,
    MessageOut,
    SessionOut,
    UploadInfoOut,
)
from chatvault.models.domain import AuditEntry, MessageRecord, SessionRecord, UploadRecord, kept, retention_of

ExportFormat = Literal["json", "markdown"]
CONTENT_TYPES = {"json": "application/json", "markdown": "text/markdown; charset=utf-8"}
EXTENSIONS = {"json": "json", "markdown": "md"}


@dataclass(frozen=True)
class Export:
    """Either the export itself (`body`, of `content_type`) or a link to it (`link`)."""

    content_type: str
    body: str | None = None
    link: ExportLinkOut | None = None


def export_session(raw_session_id: str, caller: Caller, form: ExportFormat) -> Export:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    at = clock.now()
    record = authorize_live(sessions.get(session_id), principal, at)
    charge_session_hourly("export", session_id, at, settings.export_limit_per_hour, "was exported")
    deployment = timedelta(seconds=settings.retention_seconds)
    files = [
        _exported(u, settings.download_url_seconds)
        for u in upload_records.all_of(session_id)
        if record.keeps(u.created_at, u.expires_at, at, deployment)
    ]
    counted = _Counted(messages.every_page(session_id), at, retention_of(record.retention_hours, deployment))
    encode = _json if form == "json" else _markdown
    key = exports.key_for(session_id, str(uuid.uuid4()), EXTENSIONS[form])
    sealing_key = seal.export_key(_conversation_key(record, at), session_id, key)
    chunks = encode(SessionOut.of(record), counted, files, at)
    body, stored = _written(chunks, key, sealing_key, settings.export_inline_bytes)
    inline = stored is None
    size = stored.size if stored is not None else len((body or "").encode("utf-8"))
    audit.record(
        AuditEntry(
            session_id=session_id,
            event="session_exported",
            at=at,
            actor=caller.fingerprint,
            details={
                "format": form,
                "messages": counted.count,
                "uploads": len(files),
                "form": "inline" if inline else "link",
            },
        )
    )
    metrics.add_metric(name="SessionsExported", unit="Count", value=1)
    logger.info(
        "session exported",
        extra={"session_id": session_id, "messages": counted.count, "bytes": size, "inline": inline},
    )
    if stored is None:
        return Export(content_type=CONTENT_TYPES[form], body=body)
    return Export(
        content_type=CONTENT_TYPES["json"],
        link=ExportLinkOut(
            download_url=exports.link(key, settings.export_url_seconds),
            expires_at=clock.iso(at + timedelta(seconds=settings.export_url_seconds)),
            encryption=ExportEncryptionOut(
                algorithm="AES-256-GCM",
                key=base64.urlsafe_b64encode(sealing_key).decode().rstrip("="),
                chunk_bytes=stored.chunk_bytes,
                format=seal.EXPORT_SEALED_FORMAT,
            ),
        ),
    )


def _conversation_key(record: SessionRecord, at: datetime) -> bytes:
    """What the export object's key is derived from: the conversation's key (the read of the session
    has just fetched it: this process holds it), or for a legacy session a one-off random key, never
    kept. A keyed session whose key is gone since it was read (erased meanwhile) is missing."""
    if record.key_id is None:
        return seal.new_key()
    key = conversation_keys.sealing_key(record.session_id, at)
    if key is None or conversation_keys.key_id(key) != record.key_id:
        raise SessionNotFoundError()
    return key


def _written(
    chunks: Iterator[str], key: str, sealing_key: bytes, limit: int
) -> tuple[str | None, exports.ExportObject | None]:
    """The export, encoded chunk by chunk: (its text, None) when it fits one Lambda response
    (`limit`: EXPORT_INLINE_BYTES, JSON-escaped as the response carries it), else (None, its object) once it
    is stored in full at `key`, sealed under `sealing_key`. Memory holds at most the inline limit or
    one part."""
    held: list[str] = []
    escaped = 0  # the held text's length as a JSON string
    stored: exports.ExportObject | None = None
    try:
        for chunk in chunks:
            if stored is not None:
                stored.write(chunk.encode("utf-8"))
                continue
            held.append(chunk)
            escaped += len(json.dumps(chunk)) - 2
            if escaped + 2 > limit:  # too large for a response: to the export object from here on
                stored = exports.ExportObject(key, sealing_key)
                stored.write("".join(held).encode("utf-8"))
                held = []
        if stored is None:
            return "".join(held), None
        stored.close()
    except BaseException:
        if stored is not None:
            _abort(stored)
        raise
    return None, stored


def _abort(stored: exports.ExportObject) -> None:
    try:
        stored.abort()
    except Exception:  # out of time or storage down: the lifecycle rule aborts it within a day
        logger.warning("export parts left to the lifecycle rule", extra={"key": stored.key})


class _Counted:
    """The live messages of the pages, oldest first, counted as they pass."""

    def __init__(self, pages: Iterator[list[MessageRecord]], at: datetime, retention: timedelta) -> None:
        self.pages, self.at, self.retention, self.count = pages, at, retention, 0

    def __iter__(self) -> Iterator[MessageRecord]:
        for page in self.pages:
            for message in page:
                if kept(
                    message.created_at, message.expires_at, self.at, self.retention
                ):  # never expired data
                    self.count += 1
                    yield message


def _exported(upload: UploadRecord, link_seconds: int) -> ExportedUploadOut:
    url = None
    if upload.status == "stored":
        url = uploads.presigned_get(
            uploads.key_for(upload.session_id, upload.upload_id),
            link_seconds,
            upload.content_type,
        )
    return ExportedUploadOut(**UploadInfoOut.of(upload).model_dump(), download_url=url)


def _json(
    session: SessionOut, history: _Counted, files: list[ExportedUploadOut], at: datetime
) -> Iterator[str]:
    """The export format, streamed: the same document SessionExportOut describes."""
    yield f'{{"format":"{EXPORT_FORMAT}","exported_at":"{clock.iso(at)}","session":'
    yield session.model_dump_json()
    yield ',"messages":['
    for n, message in enumerate(history):
        if n:
            yield ","
        yield MessageOut.of(message).model_dump_json()
    yield '],"uploads":['
    yield ",".join(f.model_dump_json() for f in files)
    yield "]}"


def _markdown(
    session: SessionOut, history: _Counted, files: list[ExportedUploadOut], at: datetime
) -> Iterator[str]:
    """A transcript a person can read: the session's facts, its files, then each message under a
    heading with its role and time, its content as written."""
    yield f"# {_line(session.title) if session.title else 'Conversation'}\n\n"
    yield f"- Session: `{session.session_id}`\n- Status: {session.status}\n"
    yield f"- Created: {session.created_at}\n- Exported: {clock.iso(at)}\n"
    yield f"- Messages: {session.message_count}\n"
    for key, value in sorted(session.metadata.items()):
        yield f"- {_line(key)}: {_line(value)}\n"
    if files:
        yield "\n## Files\n\n"
        for f in files:
            link = f" ([download]({f.download_url}), link valid 5 minutes)" if f.download_url else ""
            yield f"- `{f.upload_id}`: {f.content_type}, {f.size} bytes, {f.status}{link}\n"
    yield "\n## Messages\n"
    for message in history:
        yield f"\n### {message.role} · {clock.iso(message.created_at)}\n\n{message.content}\n"
        if message.feedback is not None:
            comment = f": {_line(message.feedback.comment)}" if message.feedback.comment else ""
            yield f"\n> Feedback: {message.feedback.rating}{comment}\n"


def _line(text: str) -> str:
    """A title or metadata value on one Markdown line."""
    return " ".join(text.split())
