"""Whose a session is, decided once: `Principal.may_use` answers it for a record read back (the logic's
`authorize` is it, answered 404 otherwise; `may_use_live` adds "and live"), and `owns` writes the same
rule as the DynamoDB condition on every write (dal/session_conditions.py). Here DynamoDB (moto)
evaluates the condition on stored session items for every kind of caller and session, and the two must
agree on each."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from pynamodb.exceptions import UpdateError

from chatvault.core import clock
from chatvault.dal.aws.items import SessionItem
from chatvault.dal.aws.keys import SESSION_SK
from chatvault.dal.session_conditions import owns, writable
from chatvault.dal.session_items import record_of
from chatvault.logic.rules.access import hash_token
from chatvault.models.domain import Principal

pytestmark = pytest.mark.usefixtures("aws")

TOKEN, OTHER_TOKEN = hash_token("a token"), hash_token("another token")
SESSIONS = {
    "anonymous": {"token_hash": TOKEN, "owner_id": None},
    "an account's": {"token_hash": None, "owner_id": "user-1"},
    "claimed (its token kept)": {"token_hash": TOKEN, "owner_id": "user-1"},
}
PRINCIPALS = {
    "its token": Principal(token_hash=TOKEN),
    "another token": Principal(token_hash=OTHER_TOKEN),
    "no token": Principal(),
    "its owner": Principal(owner_id="user-1"),
    "another account": Principal(owner_id="user-2"),
    "the service writer": Principal(service=True),
}


def _stored(owner_id: str | None, token_hash: str | None) -> SessionItem:
    at = clock.now()
    item = SessionItem(
        str(uuid.uuid4()),
        SESSION_SK,
        token_hash=token_hash,
        owner_id=owner_id,
        status="active",
        created_at=at,
        updated_at=at,
        message_count=0,
        expires_at=at + timedelta(hours=1),
        uploads_issued=0,
    )
    item.save()
    return item


def _condition_allows(item: SessionItem, principal: Principal, *, live: bool) -> bool:
    """Whether DynamoDB lets a write through under the condition (a no-op update of the item)."""
    condition = writable(principal, clock.now()) if live else owns(principal)
    try:
        SessionItem(item.pk, SESSION_SK).update(
            actions=[SessionItem.uploads_issued.add(0)], condition=condition
        )
    except UpdateError:
        return False
    return True


@pytest.mark.parametrize(("session", "principal"), list(itertools.product(SESSIONS, PRINCIPALS)))
def test_the_condition_and_the_read_rule_agree(session: str, principal: str) -> None:
    item = _stored(**SESSIONS[session])
    caller = PRINCIPALS[principal]
    may = caller.may_use(record_of(item))
    assert _condition_allows(item, caller, live=False) == may
    assert _condition_allows(item, caller, live=True) == may  # live and active: ownership decides
    assert caller.may_use_live(record_of(item), clock.now()) == may
    assert not caller.may_use_live(None, clock.now())


@pytest.mark.parametrize("state", ["expired", "being erased"])
def test_a_session_that_is_not_live_is_no_ones_to_write_or_to_read(state: str) -> None:
    """`may_use_live` (authorize_live, and the storage's refused writes) and the `writable` condition
    agree past ownership too: an expired session (TTL deletes late) or one being erased is no one's."""
    item = _stored(**SESSIONS["anonymous"])
    at = clock.now()
    if state == "expired":
        item.update(actions=[SessionItem.expires_at.set(at - timedelta(seconds=1))])
    else:
        item.update(actions=[SessionItem.deleted_at.set(at)])
    for caller in PRINCIPALS.values():
        assert not caller.may_use_live(record_of(item), at)
        assert not _condition_allows(item, caller, live=True)


def test_the_rule_itself() -> None:
    """The answers both must give: a token opens only a session without an owner, an account only its
    own, the service writer any."""
    answers = {
        (s, p): PRINCIPALS[p].may_use(record_of(_stored(**SESSIONS[s])))
        for s, p in itertools.product(SESSIONS, PRINCIPALS)
    }
    assert {pair for pair, allowed in answers.items() if allowed} == {
        ("anonymous", "its token"),
        ("anonymous", "the service writer"),
        ("an account's", "its owner"),
        ("an account's", "the service writer"),
        ("claimed (its token kept)", "its owner"),
        ("claimed (its token kept)", "the service writer"),
    }
