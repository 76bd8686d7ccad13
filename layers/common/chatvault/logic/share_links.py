"""POST, GET /sessions/{id}/shares and DELETE /sessions/{id}/shares/{share_id}: a session's share
links, made, listed and revoked by whoever may use the session (dal/shares.py). A link is a
read-only snapshot by reference: the conversation as it is when the link is made, read by anyone who
holds the link (logic/get_shared.py) until it expires, is revoked, or the conversation is gone.
AllowSharing=false: these routes are 404 (functions/share_links/app.py)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from chatvault.core import clock
from chatvault.core.errors import (
    ShareNotFoundError,
    StorageUnavailableError,
)
from chatvault.core.observability import metrics
from chatvault.core.settings import Settings, get_settings
from chatvault.dal import sessions, shares
from chatvault.dal.session_items import as_stored
from chatvault.logic.rules import cursor
from chatvault.logic.rules.access import Caller, authorize_live, principal_of, session_id_from_path
from chatvault.logic.rules.limits import charge_session_hourly
from chatvault.models.api import RevokedShareOut, ShareListOut, ShareOut
from chatvault.models.domain import Principal, SessionRecord, ShareRecord, retention_of

# 128 random bits, URL-safe (22 characters): the link is the capability
SHARE_ID_BYTES = 16
ATTEMPTS = 3  # an append between the read and the write moves the newest message: read again


def new_share_id() -> str:
    return secrets.token_urlsafe(SHARE_ID_BYTES)


def is_share_id(text: str) -> bool:
    return len(text) == 22 and all(c.isalnum() or c in "-_" for c in text) and text.isascii()


def create_share(raw_session_id: str, caller: Caller) -> ShareOut:
    settings = get_settings()
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    at = clock.now()
    record = _live(session_id, principal, at)
    charge_session_hourly("share", session_id, at, settings.share_limit_per_hour, "made share links")
    for _ in range(ATTEMPTS):
        share = _snapshot(record, at, settings)
        if shares.create(share, principal, at):
            metrics.add_metric(name="SharesCreated", unit="Count", value=1)
            return ShareOut.of(share)
        record = _live(session_id, principal, at)  # refused: gone, or a message arrived meanwhile
    raise StorageUnavailableError("The conversation is changing too fast to share; retry shortly.")


def _snapshot(record: SessionRecord, at: datetime, settings: Settings) -> ShareRecord:
    """The link to the conversation as this read found it: up to its newest message, for ShareHours
    or its retention, whichever is shorter."""
    limit_at = as_stored(at + timedelta(hours=settings.share_hours))
    kept = retention_of(record.retention_hours, timedelta(seconds=settings.retention_seconds))
    return ShareRecord(
        session_id=record.session_id,
        share_id=new_share_id(),
        created_at=at,
        expires_at=min(limit_at, as_stored(at + kept)),
        limit_at=limit_at,
        upto=record.last_position,
        message_count=record.message_count,
    )


def list_shares(raw_session_id: str, caller: Caller, limit: int, raw_cursor: str | None) -> ShareListOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    scope = f"shares:{session_id}"
    after = cursor.decode_field(scope, raw_cursor, "h", is_share_id)
    at = clock.now()
    _live(session_id, principal, at)
    found, last = shares.page(session_id, limit, after)
    return ShareListOut(
        items=[ShareOut.of(share) for share in found if share.expires_at > at],
        next_cursor=cursor.encode(scope, {"h": last} if last else None),
    )


def revoke_share(raw_session_id: str, raw_share_id: str, caller: Caller) -> RevokedShareOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    at = clock.now()
    _live(session_id, principal, at)
    if not is_share_id(raw_share_id) or not shares.revoke(session_id, raw_share_id):
        raise ShareNotFoundError()
    return RevokedShareOut(share_id=raw_share_id, revoked_at=clock.iso(at))


def _live(session_id: str, principal: Principal, at: datetime) -> SessionRecord:
    """The session's item (one strongly consistent GetItem): 404 unless it is the caller's and live."""
    record = authorize_live(sessions.state(session_id), principal, at)
    return record
