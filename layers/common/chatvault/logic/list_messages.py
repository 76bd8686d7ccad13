"""GET /sessions/{id}/messages: a page of history in either order, in one round trip.

Every page arrives with the session item, which authorizes the caller; nothing is returned before
the caller is checked against it.

A cursor carries the order of the pages it continues: with a cursor, `order` is ignored, so the
next page follows the previous one, whatever `order` the request names (both parameters are optional
and independent in the OpenAPI document, so every pair must be answered, not refused)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from chatvault.core import clock
from chatvault.core.errors import InvalidCursorError
from chatvault.core.settings import get_settings
from chatvault.dal import messages
from chatvault.logic.rules import cursor
from chatvault.logic.rules.access import Caller, authorize_live, principal_of, session_id_from_path
from chatvault.models.api import MessageListOut, MessageOut
from chatvault.models.domain import Principal, SessionRecord

Order = Literal["asc", "desc"]
ORDERS: tuple[Order, ...] = ("asc", "desc")


def list_messages(
    raw_session_id: str, caller: Caller, limit: int, order: Order, raw_cursor: str | None
) -> MessageListOut:
    session_id = session_id_from_path(raw_session_id)
    principal = principal_of(caller)
    scopes = {f"messages:{session_id}:{each}": each for each in ORDERS}
    scope = f"messages:{session_id}:{order}"
    after = None
    if raw_cursor is not None:
        scope, start = cursor.decode_any(scopes, raw_cursor)
        order = scopes[scope]  # the cursor's order, not the request's
        after = start.get("p")
        if set(start) != {"p"} or not messages.is_position(after):
            raise InvalidCursorError()
    at = clock.now()
    page = messages.page(session_id, descending=order == "desc", limit=limit, after=after)
    head = _check_head(page.head, principal, at)
    deployment = timedelta(seconds=get_settings().retention_seconds)
    items = [
        MessageOut.of(m) for m in page.messages if head.keeps(m.created_at, m.expires_at, at, deployment)
    ]
    next_key = {"p": page.last_position} if page.last_position else None
    return MessageListOut(items=items, next_cursor=cursor.encode(scope, next_key))


def _check_head(head: SessionRecord | None, principal: Principal, at: datetime) -> SessionRecord:
    """404 unless the session is the caller's and live (not expired, not being erased)."""
    record = authorize_live(head, principal, at)
    return record
