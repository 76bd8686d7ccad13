"""GET /shared/{share_id}: a shared conversation, read-only, for whoever holds the link (no
credentials): its title and, in pages, the messages it held when the link was made, as they still
are (a message its retention has removed since is not shown). No session id, no metadata, no
uploads. An unknown link, a revoked or expired one, and one whose conversation is gone (erased,
expired, keyless) are all the same 404 `share_not_found`.

Three requests: the link's session by the `by_share` index, then the link, the session, its profile
(one BatchGetItem) with the session's key beside it, then one Query of the snapshot's page."""

from __future__ import annotations

from datetime import timedelta

from chatvault.core import clock
from chatvault.core.errors import InvalidCursorError, ShareNotFoundError
from chatvault.core.settings import get_settings
from chatvault.dal import messages as message_keys
from chatvault.dal import shares
from chatvault.logic.rules import cursor
from chatvault.logic.share_links import is_share_id
from chatvault.models.api import SharedConversationOut, SharedMessageOut

# A shared page must not travel further than the person sent it: not kept by any cache, and not
# named to the sites its reader goes to next
SHARED_HEADERS = {"Referrer-Policy": "no-referrer"}


def get_shared(raw_share_id: str, limit: int, raw_cursor: str | None) -> SharedConversationOut:
    if not is_share_id(raw_share_id):
        raise ShareNotFoundError()
    share_id = raw_share_id
    scope = f"shared:{share_id}"
    after = cursor.decode_field(scope, raw_cursor, "p", message_keys.is_position)
    at = clock.now()
    session_id = shares.session_of(share_id)
    found = shares.opened(session_id, share_id) if session_id is not None else None
    if found is None:
        raise ShareNotFoundError()
    share, session, key = found
    if share.expires_at <= at or not session.is_live(at):
        raise ShareNotFoundError()
    if after is not None and (share.upto is None or after >= share.upto):
        raise InvalidCursorError()  # never one this link issued: its pages end at `upto`
    items: list[SharedMessageOut] = []
    last = None
    if share.upto is not None:
        page, last = shares.messages(session.session_id, share.upto, key, limit, after)
        deployment = timedelta(seconds=get_settings().retention_seconds)
        items = [
            SharedMessageOut(role=m.role, content=m.content, created_at=clock.iso(m.created_at))
            for m in page
            if session.keeps(m.created_at, m.expires_at, at, deployment)
        ]
    return SharedConversationOut(
        title=session.title,
        created_at=clock.iso(share.created_at),
        expires_at=clock.iso(share.expires_at),
        message_count=share.message_count,
        items=items,
        next_cursor=cursor.encode(scope, {"p": last} if last else None),
    )
