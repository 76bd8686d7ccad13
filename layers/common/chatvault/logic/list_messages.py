"""GET /sessions/{id}/messages: a page of history in either order, in one round trip.

Every page arrives with the item that authorizes the caller (the session, or for a first descending
page the guard); nothing is returned before the caller is checked against it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from chatvault import clock
from chatvault.dal import messages, sessions
from chatvault.errors import InvalidCursorError, SessionNotFoundError
from chatvault.logic import cursor
from chatvault.logic.identity import Caller, authorize, principal_of, session_id_from_path
from chatvault.models.api import MessageListOut, MessageOut
from chatvault.models.domain import Principal, SessionAccess, SessionRecord


def list_messages(
    raw_session_id: str, caller: Caller, limit: int, order: Literal["asc", "desc"], raw_cursor: str | None
) -> MessageListOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    scope = f"messages:{session_id}:{order}"
    start = cursor.decode(scope, raw_cursor)
    after = None
    if start is not None:
        after = start.get("p")
        if set(start) != {"p"} or not messages.is_position(after):
            raise InvalidCursorError()
    at = clock.now()
    page = messages.page(session_id, descending=order == "desc", limit=limit, after=after)
    _check_head(page.head, session_id, principal, at)
    items = [MessageOut.of(m) for m in page.messages if m.expires_at > at]
    next_key = {"p": page.last_position} if page.last_position else None
    return MessageListOut(items=items, next_cursor=cursor.encode(scope, next_key))


def _live(record: SessionRecord, at: datetime) -> None:
    if not record.is_live(at):
        raise SessionNotFoundError()


def _check_head(
    head: SessionRecord | SessionAccess | None, session_id: str, principal: Principal, at: datetime
) -> None:
    """Authorize from the item the page brought; read the session only when that item cannot say."""
    if isinstance(head, SessionRecord):
        _live(authorize(head, principal), at)
        return
    if isinstance(head, SessionAccess):
        authorize(head, principal)
        if head.deleted_at is not None:
            raise SessionNotFoundError()
        if head.expires_at > at:
            return
    # no guard (removed by TTL while a PATCH kept the session alive) or an expired one: ask the session
    _live(authorize(sessions.get(session_id), principal), at)
