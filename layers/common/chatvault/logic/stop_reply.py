"""POST /sessions/{id}/chat/stop: the person's Stop. The streamed reply being made in the session
(logic/chat.py) sees it within STOP_CHECK_S, closes the model's stream and stores the text so far with
`attributes.stop_reason: stopped`. Answers whether a reply was being made; changes nothing else."""

from __future__ import annotations

from chatvault.core import clock
from chatvault.core.errors import SessionNotFoundError
from chatvault.dal import replies
from chatvault.logic.rules.access import Caller, principal_of, session_id_from_path
from chatvault.models.api import StopReplyOut


def stop_reply(raw_session_id: str, caller: Caller) -> StopReplyOut:
    session_id = session_id_from_path(raw_session_id)
    asked = replies.stop(session_id, principal_of(caller), clock.now())
    if asked == "gone":
        raise SessionNotFoundError()
    return StopReplyOut(stopping=asked == "stopping")
