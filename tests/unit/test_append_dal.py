"""The append's outcomes at the data layer (dal/messages.py): each of created, replayed, conflict,
ended, full and missing, decided from the refused transaction alone."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from chatvault import clock
from chatvault.dal import messages, sessions
from chatvault.logic.identity import hash_token
from chatvault.models.domain import Appended, NewMessage, Principal, SessionChanges
from tests.helpers import stored_session

pytestmark = pytest.mark.usefixtures("aws")
RETENTION = timedelta(hours=1)
OWNER = Principal(token_hash=hash_token("t"))


def _session(hours: float = 1) -> str:
    return stored_session(hours)


def _message(session_id: str, content: str = "hi", message_id: str | None = None) -> NewMessage:
    return NewMessage(
        session_id=session_id,
        message_id=message_id or str(uuid.uuid4()),
        client_id=message_id is not None,
        role="user",
        content=content,
        metadata={},
        body_hash=f"hash of {content}",
    )


def _append(
    message: NewMessage, principal: Principal = OWNER, per_minute: int = 0, ceiling: int = 10_000
) -> Appended:
    return messages.append(message, principal, RETENTION, per_minute, ceiling)


def test_created_returns_the_stored_message_in_order() -> None:
    sid = _session()
    first, second = _append(_message(sid, "one")), _append(_message(sid, "two"))
    assert first.outcome == second.outcome == "created"
    assert first.message is not None
    assert second.message is not None
    assert first.message.position < second.message.position
    page = messages.page(sid, descending=False, limit=10, after=None)
    assert [m.content for m in page.messages] == ["one", "two"]
    assert page.messages[0] == first.message


def test_replayed_returns_the_first_stored_message() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    created = _append(_message(sid, "same", mid))
    replayed = _append(_message(sid, "same", mid))
    assert (created.outcome, replayed.outcome) == ("created", "replayed")
    assert replayed.message == created.message
    assert len(messages.page(sid, descending=False, limit=10, after=None).messages) == 1


def test_conflict_when_the_id_was_used_with_another_body() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    _append(_message(sid, "one", mid))
    assert _append(_message(sid, "other", mid)) == Appended(outcome="conflict")


def test_ended_when_the_session_was_ended() -> None:
    sid = _session()
    at = clock.now()
    sessions.update(sid, OWNER, SessionChanges(fields=frozenset({"status"}), end=True), at, at + RETENTION)
    assert _append(_message(sid)) == Appended(outcome="ended")


def test_full_when_the_session_holds_the_most_messages_allowed_and_nothing_is_stored() -> None:
    sid = _session()
    mid = str(uuid.uuid4())
    assert _append(_message(sid, "one", mid), ceiling=2).outcome == "created"
    assert _append(_message(sid, "two"), ceiling=2).outcome == "created"
    assert _append(_message(sid, "three"), ceiling=2) == Appended(outcome="full")
    assert [m.content for m in messages.page(sid, descending=False, limit=10, after=None).messages] == [
        "one",
        "two",
    ]
    state = sessions.state(sid)
    assert state is not None
    assert state.message_count == 2
    # a retry of a message the session already holds is still answered with it
    assert _append(_message(sid, "one", mid), ceiling=2).outcome == "replayed"


@pytest.mark.parametrize("case", ["absent", "another token", "expired", "being erased"])
def test_missing_for_anything_the_caller_may_not_write(case: str) -> None:
    sid = _session(hours=-1 if case == "expired" else 1)
    principal = OWNER
    if case == "absent":
        sid = str(uuid.uuid4())
    elif case == "another token":
        principal = Principal(token_hash=hash_token("someone else"))
    elif case == "being erased":
        at = clock.now()
        assert sessions.mark_erasing(sid, OWNER, at, at + RETENTION) is not None
    assert _append(_message(sid), principal) == Appended(outcome="missing")
    if case != "absent":
        assert messages.page(sid, descending=False, limit=10, after=None).messages == []
