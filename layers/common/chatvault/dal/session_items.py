"""A session's two items as stored and as the logic reads them: the session item (`#S`: owner, state,
counters; small, rewritten by every append) and its profile (`!P`: title and metadata, sealed under
the conversation's key; written by create and PATCH only), their TTLs, and the record made of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.attributes import MapAttribute

from chatvault.dal.aws.items import (
    SEALED_METADATA,
    SEALED_PREVIEW,
    SEALED_TITLE,
    ProfileItem,
    SessionItem,
    compact_json,
    open_text,
    seal_text,
)
from chatvault.dal.aws.keys import PROFILE_SK, SESSION_SK
from chatvault.models.domain import (
    SessionRecord,
)


def profile_expiry(session_expires_at: datetime, retention: timedelta) -> datetime:
    """The profile outlives the session item by a little (a day, or the session's retention if
    shorter), so that appends, which slide the session's expiry, need to refresh it only once in that
    time."""
    return session_expires_at + min(timedelta(days=1), retention)


def key_slack(retention: timedelta) -> timedelta:
    """How far a key's TTL may trail its session's (of this retention): an append moves the key's
    TTL only when the session's new expiry would pass it by more (about once an hour of activity:
    dal/messages.py), so a conversation becomes unreadable at most this much before its session
    expires: an hour, or a 24th of the retention if shorter."""
    return timedelta(seconds=min(3600, int(retention.total_seconds()) // 24))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def as_stored(expiry: datetime) -> datetime:
    """An expiry as a TTL attribute stores it (whole seconds), as every read returns it."""
    return datetime.fromtimestamp(epoch(expiry), tz=UTC)


def record_of(
    item: SessionItem, profile: ProfileItem | None = None, key: bytes | None = None
) -> SessionRecord:
    """The session as the logic sees it; without its profile (`title` None, `metadata` empty) when
    the read did not fetch it (appends, pages: they only need who owns it and its state), and without
    its preview when the read did not fetch its key. `expires_at` is when the conversation becomes
    unreadable: the session's expiry, or its key's when that falls first."""
    expires_at = item.expires_at
    if item.key_expires_at is not None:
        expires_at = min(expires_at, datetime.fromtimestamp(int(item.key_expires_at), tz=UTC))
    preview: str | None = item.preview
    if item.sealed_preview is not None:
        preview = open_text(key, item.pk, SESSION_SK, SEALED_PREVIEW, item.sealed_preview) if key else None
    title, metadata = (None, {}) if profile is None else _profile_fields(profile, key)
    return SessionRecord(
        session_id=item.pk,
        token_hash=item.token_hash,
        owner_id=item.owner_id,
        title=title,
        metadata=metadata,
        status=item.status,  # type: ignore[arg-type]
        created_at=item.created_at,
        updated_at=item.updated_at,
        last_message_at=item.last_message_at,
        message_count=int(item.message_count),
        preview=preview,
        expires_at=expires_at,
        uploads_issued=int(item.uploads_issued or 0),
        deleted_at=item.deleted_at,
        last_position=item.last_position,
        append_tat=int(item.append_tat) if item.append_tat is not None else None,
        profile_expires_at=int(item.profile_expires_at) if item.profile_expires_at is not None else None,
        reply_lock=item.reply_lock,
        reply_until=int(item.reply_until) if item.reply_until is not None else None,
        reply_stopped=item.reply_stopped,
        key_id=item.key_id,
        key_expires_at=int(item.key_expires_at) if item.key_expires_at is not None else None,
        temporary=bool(item.temporary),
        retention_hours=int(item.retention_hours) if item.retention_hours is not None else None,
    )


def _profile_fields(profile: ProfileItem, key: bytes | None) -> tuple[str | None, dict[str, str]]:
    """The title and metadata: sealed (a keyed session's) or plaintext (a legacy one's)."""
    title = profile.title
    metadata = plain_map(profile.metadata)
    if key is not None:
        if profile.sealed_title is not None:
            title = open_text(key, profile.pk, PROFILE_SK, SEALED_TITLE, profile.sealed_title)
        if profile.sealed_metadata is not None:
            opened = json.loads(
                open_text(key, profile.pk, PROFILE_SK, SEALED_METADATA, profile.sealed_metadata)
            )
            metadata = {str(k): str(v) for k, v in opened.items()}
    return title, metadata


def sealed_profile(
    key: bytes | None, session_id: str, title: str | None, metadata: dict[str, str]
) -> dict[str, Any]:
    """A profile's title and metadata as attributes: sealed under the key, or plaintext without one
    (a legacy session)."""
    if key is None:
        return {"title": title, "metadata": dict(metadata)}
    return {
        SEALED_TITLE: seal_text(key, session_id, PROFILE_SK, SEALED_TITLE, title) if title else None,
        SEALED_METADATA: (
            seal_text(key, session_id, PROFILE_SK, SEALED_METADATA, compact_json(metadata))
            if metadata
            else None
        ),
    }


def plain_map(value: Any) -> dict[str, str]:
    """A raw MapAttribute reads back as a MapAttribute; a freshly assigned one is still a dict."""
    raw = value.as_dict() if isinstance(value, MapAttribute) else value  # type: ignore[no-untyped-call]
    return {str(k): str(v) for k, v in (raw or {}).items()}


def profile_sealed(profile: ProfileItem | None) -> bool:
    return profile is not None and (profile.sealed_title is not None or profile.sealed_metadata is not None)
