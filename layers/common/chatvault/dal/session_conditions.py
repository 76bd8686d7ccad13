"""The conditions that guard every write to a session: whose it is (`owns`: Principal.may_use written as
a DynamoDB condition; tests/unit/test_ownership.py holds the two to the same answers), that it is live
and active (`writable`), under which key and retention it was written."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from pynamodb.expressions.condition import Condition

from chatvault.dal import conversation_keys
from chatvault.dal.aws.items import (
    SessionItem,
)
from chatvault.models.domain import (
    Principal,
)


def owns(principal: Principal) -> Condition:
    """The session item exists and is the principal's (Principal.may_use, as a condition)."""
    if principal.service:
        return cast(Condition, SessionItem.pk.exists())
    if principal.owner_id is not None:
        return cast(Condition, SessionItem.owner_id == principal.owner_id)
    return cast(
        Condition,
        (SessionItem.token_hash == (principal.token_hash or "")) & SessionItem.owner_id.does_not_exist(),
    )


def writable(principal: Principal, at: datetime) -> Condition:
    """What every write to a session needs: it is the caller's, live (not expired, not being erased)
    and active."""
    return cast(
        Condition,
        SessionItem.pk.exists()
        & owns(principal)
        & SessionItem.deleted_at.does_not_exist()
        & (SessionItem.expires_at > at)
        & (SessionItem.status == "active"),
    )


def vacant(at: datetime) -> Condition:
    """No item, or one whose TTL has passed but that DynamoDB has not removed yet."""
    return cast(Condition, SessionItem.pk.does_not_exist() | (SessionItem.expires_at < at))


def keyed_as(key: bytes | None) -> Condition:
    """The session item is sealed under this key (or, None, is a legacy session without one)."""
    if key is None:
        return cast(Condition, SessionItem.key_id.does_not_exist())
    return cast(Condition, SessionItem.key_id == conversation_keys.key_id(key))


def retained_for(hours: int | None) -> Condition:
    """The session's own retention is this one (None: it has none, the deployment's applies): a
    write that slides its expiry assumed it."""
    if hours is None:
        return cast(Condition, SessionItem.retention_hours.does_not_exist())
    return cast(Condition, SessionItem.retention_hours == hours)
