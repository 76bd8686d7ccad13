"""Sessions: create, read, update, claim, and an upload counted. (Their items and record:
dal/session_items.py; the conditions on their writes: dal/session_conditions.py; lists:
dal/session_lists.py; the panic button's steps: dal/erasure.py.)

A session is two items: the session item (`#S`: owner, state, counters; small, rewritten by every
append) and its profile (`!P`: title and metadata, up to ~37 KB; written by create and PATCH only), so
an append's cost does not grow with the title and metadata. Reads fetch both in one BatchGetItem.

Its title, metadata and preview are sealed under the conversation's own key (dal/aws/items.py), made by
the create and written in its transaction to the keys table. A read fetches the key beside the
session (`KeySoon`: one GetItem sent with the read, none when this process holds it), and a keyed
session whose key is gone (erased, expired, or a restored copy of an erased one) reads as missing."""

from __future__ import annotations

from concurrent.futures import Future, wait
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chatvault.core import clock
from chatvault.core.clock import iso
from chatvault.core.errors import (
    RateLimitedError,
    StorageUnavailableError,
)
from chatvault.dal import audit, conversation_keys, limits
from chatvault.dal.aws import side_reads
from chatvault.dal.aws.items import (
    SEALED_METADATA,
    SEALED_TITLE,
    ChatItem,
    ProfileItem,
    SessionItem,
    UploadItem,
)
from chatvault.dal.aws.keys import PROFILE_SK, SESSION_SK, UPLOAD_PREFIX
from chatvault.dal.aws.retry import storage_errors
from chatvault.dal.aws.transaction import Refused, Transaction
from chatvault.dal.conversation_keys import KeyGone, KeySoon, move_key_ttl
from chatvault.dal.session_conditions import keyed_as, owns, retained_for, vacant, writable
from chatvault.dal.session_items import (
    as_stored,
    epoch,
    profile_expiry,
    profile_sealed,
    record_of,
    sealed_profile,
)
from chatvault.models.domain import (
    AuditEntry,
    NewSession,
    Principal,
    RateCharge,
    SessionChanges,
    SessionRecord,
    UploadRecord,
    retention_of,
)

# An upload's write, sent again when the conversation's retention was not the one it assumed: a third
# refusal means a retention changing under it twice (answered 503)
UPLOAD_ATTEMPTS = 3


@storage_errors
def create(new: NewSession, charge: RateCharge, entry: AuditEntry) -> SessionRecord | None:
    """Session, profile, the conversation's key (in the keys table), audit entry and the client's
    rate-limit charge: one transaction. The key's TTL is the session's.

    Every attempt counts against the client's limit, whatever its answer: when the id is taken, the
    refused transaction counted nothing, so the attempt is charged alone (one more UpdateItem, on the
    refused path only) and None answers it (the caller's 409); over the limit, it is 429 instead, so a
    client over its limit learns nothing about which ids exist."""
    profile_expires_at = profile_expiry(new.expires_at, new.expires_at - new.created_at)
    key_item, key = conversation_keys.new(new.session_id, new.expires_at, new.retention_hours)
    listed = new.owner_id is not None and not new.temporary  # a temporary one is never listed
    session = SessionItem(
        new.session_id,
        SESSION_SK,
        token_hash=new.token_hash,
        owner_id=new.owner_id,
        owner_key=new.owner_id if listed else None,
        activity_at=iso(new.created_at) if listed else None,
        temporary=True if new.temporary else None,
        retention_hours=new.retention_hours,
        status="active",
        created_at=new.created_at,
        updated_at=new.created_at,
        message_count=0,
        expires_at=new.expires_at,
        uploads_issued=0,
        profile_expires_at=epoch(profile_expires_at),
        key_id=conversation_keys.key_id(key),
        key_expires_at=epoch(new.expires_at),
    )
    profile = ProfileItem(
        new.session_id,
        PROFILE_SK,
        expires_at=profile_expires_at,
        **sealed_profile(key, new.session_id, new.title, new.metadata),
    )

    tx = Transaction()
    tx.save("session", session, condition=vacant(new.created_at))
    # a profile (or key) left by an expired session (their TTLs run a little longer) is replaced
    tx.save("profile", profile)
    tx.save("key", key_item)
    tx.save("audit", audit.item_of(entry))
    limits.add_charge(tx, charge)
    try:
        tx.commit()
    except Refused as refused:
        if refused.failed(limits.CHARGE):
            raise RateLimitedError(charge.retry_after) from refused
        if refused.failed("session"):
            if not limits.charge_alone(charge):
                raise RateLimitedError(charge.retry_after) from refused
            return None  # the id is taken
        raise
    conversation_keys.remember(new.session_id, key, new.expires_at, new.retention_hours)
    return record_of(session, profile, key)


@storage_errors
def get(session_id: str) -> SessionRecord | None:
    """The session with its profile: one strongly consistent BatchGetItem of both items, its key read
    beside it. None when missing, or keyed and its key gone."""
    key = KeySoon(session_id)
    session: SessionItem | None = None
    profile: ProfileItem | None = None
    try:
        for item in ChatItem.batch_get(
            [(session_id, SESSION_SK), (session_id, PROFILE_SK)], consistent_read=True
        ):
            if isinstance(item, SessionItem):
                session = item
            elif isinstance(item, ProfileItem):
                profile = item
        if session is None:
            return None
        return record_of(session, profile, key.named(session.key_id) or _sealed_since(session, profile))
    except KeyGone:
        return None
    finally:
        key.settle()


def _sealed_since(session: SessionItem, profile: ProfileItem | None) -> bytes | None:
    """The key that opens a legacy session's profile found sealed: its session item was read before it
    had a key and its profile after it was sealed (`make admin ARGS="seal-legacy"` in between; a
    BatchGetItem reads its items one by one, and an index lags): the key stored now, one GetItem.
    None for a session with a key (its own named it) or a plaintext profile."""
    if session.key_id is not None or not profile_sealed(profile):
        return None
    return conversation_keys.read_afresh(session.pk, clock.now())


@storage_errors
def state(session_id: str) -> SessionRecord | None:
    """The session item alone (who owns it, its state; no profile, no preview, no key): one strongly
    consistent GetItem. A keyed session whose key is gone still has its state (the panic button
    erases it whatever is left)."""
    try:
        return record_of(SessionItem.get(session_id, SESSION_SK, consistent_read=True))
    except DoesNotExist:
        return None


@storage_errors
def update(
    session_id: str,
    principal: Principal,
    changes: SessionChanges,
    at: datetime,
    retention: timedelta,
    *,
    entry: AuditEntry | None = None,
) -> SessionRecord | None:
    """Apply a PATCH in one transaction: the session item (conditioned on the caller, its state and
    its key), the profile (its fields, sealed under the session's key, and its TTL, which must outlive
    the session's new expiry), the key's TTL (moved with the session's) and, when ending the session,
    the audit entry. None when the session is not live, not the caller's, ended, or its key is gone
    (the caller reads it to tell which).

    The key is needed before the write: held by this process (the usual case), else read first (one
    GetItem). The answer is the session as this write left it: the session is read concurrently with
    the write and the fields the write set are laid over what was read (fields it did not set are the
    same before and after it), so the PATCH costs one round trip of latency.

    The session's expiry slides by its own retention (`retention_hours`, held with its key; else the
    deployment's `retention`), and the write is conditioned on it. Refused, the session's state is read
    (one GetItem, on the refused path only): written under another key than this one (a legacy session
    given its key in between: `make admin ARGS="seal-legacy"`; the key stored now is read) or for
    another retention, it is tried once more as it is stored now."""
    key = conversation_keys.sealing_key(session_id, at)
    hours = conversation_keys.retention_hours(session_id)
    updated = _update(session_id, principal, changes, at, retention, entry=entry, key=key, hours=hours)
    if updated is not None:
        return updated
    now = state(session_id)
    if now is None:
        return None
    if now.key_id != (conversation_keys.key_id(key) if key is not None else None):
        key = conversation_keys.named(session_id, now.key_id, at, None) if now.key_id is not None else None
        if now.key_id is not None and key is None:
            return None  # keyed, and its key is gone
    elif now.retention_hours == hours:
        return None  # refused for what a retry would not change: the caller reads it to tell why
    hours = now.retention_hours
    return _update(session_id, principal, changes, at, retention, entry=entry, key=key, hours=hours)


def _update(
    session_id: str,
    principal: Principal,
    changes: SessionChanges,
    at: datetime,
    retention: timedelta,
    *,
    entry: AuditEntry | None,
    key: bytes | None,
    hours: int | None,
) -> SessionRecord | None:
    """One attempt of `update`, under this key (None: a legacy session's plaintext) and assuming this
    retention of the session's own (None: the deployment's)."""
    before = side_reads.concurrently(get, session_id)
    retains = "retention_hours" in changes.fields
    new_hours = changes.retention_hours if retains else hours
    kept = retention_of(new_hours, retention)
    expires_at = at + kept
    profile_expires_at = profile_expiry(expires_at, kept)
    actions: list[Any] = [
        SessionItem.updated_at.set(at),
        SessionItem.expires_at.set(expires_at),
        SessionItem.profile_expires_at.set(epoch(profile_expires_at)),
    ]
    if principal.owner_id is not None:
        actions.append(SessionItem.activity_at.set(iso(at)))
    if changes.end:
        actions.append(SessionItem.status.set("ended"))
    condition = writable(principal, at) & keyed_as(key) & retained_for(hours)
    if retains:
        actions.append(
            SessionItem.retention_hours.set(new_hours)
            if new_hours is not None
            else SessionItem.retention_hours.remove()
        )
        if not changes.temporary_allowed:  # longer than a temporary conversation may be kept
            condition &= SessionItem.temporary.does_not_exist()
    profile_actions = _profile_changes(session_id, changes, key, profile_expires_at)

    tx = Transaction()
    if entry is not None:
        tx.save("audit", audit.item_of(entry))
    if key is not None:  # the key's TTL follows the session's, and holds its retention
        actions += move_key_ttl(tx, session_id, expires_at, (new_hours,) if retains else ())
    tx.update("session", SessionItem(session_id, SESSION_SK), actions, condition=condition)
    tx.update("profile", ProfileItem(session_id, PROFILE_SK), profile_actions)
    read = _commit_beside(tx, before, session_id)
    if read is None:
        return None
    if key is not None:
        conversation_keys.remember(session_id, key, as_stored(expires_at), new_hours)
    written: dict[str, Any] = {
        "updated_at": at,
        "expires_at": as_stored(expires_at),
        "retention_hours": new_hours,
    }
    if changes.end:
        written["status"] = "ended"
    if "title" in changes.fields:
        written["title"] = changes.title or None
    if "metadata" in changes.fields:
        written["metadata"] = dict(changes.metadata or {})
    return read.model_copy(update=written)


def _profile_changes(
    session_id: str, changes: SessionChanges, key: bytes | None, profile_expires_at: datetime
) -> list[Any]:
    """A PATCH's actions on the profile: its TTL, and the fields it sets (sealed under the key)."""
    profile_actions: list[Any] = [ProfileItem.expires_at.set(profile_expires_at)]
    sealed = sealed_profile(key, session_id, changes.title, dict(changes.metadata or {}))
    for field, plain_attr, sealed_attr, name in (
        ("title", ProfileItem.title, ProfileItem.sealed_title, SEALED_TITLE),
        ("metadata", ProfileItem.metadata, ProfileItem.sealed_metadata, SEALED_METADATA),
    ):
        if field not in changes.fields:
            continue
        value = sealed[field] if key is None else sealed[name]
        attribute = plain_attr if key is None else sealed_attr
        profile_actions.append(attribute.set(value) if value else attribute.remove())  # type: ignore[attr-defined]
        if key is not None:  # a half-sealed profile's plaintext (seal-legacy) must not read again
            profile_actions.append(plain_attr.remove())  # type: ignore[attr-defined]
    return profile_actions


@storage_errors
def claim(
    session_id: str, token_hash: str, owner_id: str, at: datetime, entry: AuditEntry
) -> SessionRecord | None:
    """AuthMode=both: the anonymous session becomes `owner_id`'s, in one transaction: the session item
    (conditioned on its token, no owner yet, and live) gains its owner and enters the owner's index,
    and the audit entry is written. The token stops working at once: a token opens only a session
    without an owner (`owns`). None when refused (the caller reads it to tell why).

    The answer is the session as read alongside the write: a claim changes no field a Session shows."""
    before = side_reads.concurrently(get, session_id)
    condition = (
        owns(Principal(token_hash=token_hash))
        & SessionItem.deleted_at.does_not_exist()
        & (SessionItem.expires_at > at)
        & SessionItem.temporary.does_not_exist()  # a temporary conversation belongs to no account
    )
    tx = Transaction()
    tx.save("audit", audit.item_of(entry))
    tx.update(
        "session",
        SessionItem(session_id, SESSION_SK),
        [
            SessionItem.owner_id.set(owner_id),
            SessionItem.owner_key.set(owner_id),
            SessionItem.activity_at.set(iso(at)),
        ],
        condition=condition,
    )
    read = _commit_beside(tx, before, session_id)
    return read.model_copy(update={"owner_id": owner_id}) if read is not None else None


def _commit_beside(
    tx: Transaction, before: Future[SessionRecord | None], session_id: str
) -> SessionRecord | None:
    """Commit a write to the session (its item named "session") and take the read sent beside it:
    None if the session's condition refused the write; else the session as that read saw it, or as a
    new read finds it when that one failed or found none (the write stands: read what it left rather
    than answer 503 for a done write)."""
    if not tx.committed("session", "key"):
        wait([before])  # nothing of this request outlives it
        return None
    try:
        read = before.result()
    except StorageUnavailableError:
        read = None
    return read if read is not None else get(session_id)


@storage_errors
def record_upload(
    session_id: str,
    principal: Principal,
    at: datetime,
    charge: RateCharge,
    entry: AuditEntry,
    *,
    upload: UploadRecord,
    retention: timedelta,
) -> UploadRecord | None:
    """Count an issued upload on a live, active session of the caller, with its record (`pending`),
    its audit entry and the client's rate-limit charge, in one transaction. The record is kept for the
    conversation's own retention (`retention`: the deployment's, when it has none), so that its TTL's
    removal also removes its file (logic/remove_expired_files.py): the write assumes the retention held
    with the conversation's key (none when not held) and, refused for another, is sent again with the
    one it read. The record as written; None when the session refused it."""
    hours = conversation_keys.retention_hours(session_id)
    for _ in range(UPLOAD_ATTEMPTS):
        record = upload.model_copy(update={"expires_at": as_stored(at + retention_of(hours, retention))})
        tx = Transaction()
        tx.save("audit", audit.item_of(entry))
        tx.save(
            "upload",
            UploadItem(
                record.session_id,
                UPLOAD_PREFIX + record.upload_id,
                content_type=record.content_type,
                size=record.size,
                status=record.status,
                created_at=record.created_at,
                expires_at=record.expires_at,
            ),
        )
        tx.update(
            "session",
            SessionItem(session_id, SESSION_SK),
            [SessionItem.uploads_issued.add(1)],
            condition=writable(principal, at) & retained_for(hours),
            return_values="ALL_OLD",
        )
        limits.add_charge(tx, charge)
        try:
            tx.commit()
        except Refused as refused:
            if refused.failed("session"):
                old = refused.old("session", SessionItem)
                session = record_of(old) if old is not None else None
                if session is None or session.retention_hours == hours:
                    return None  # refused for what the caller reads to tell
                hours = session.retention_hours  # its own retention, as stored now
                continue
            if refused.failed(limits.CHARGE):
                raise RateLimitedError(charge.retry_after) from refused
            raise
        return record
    raise StorageUnavailableError("The conversation's retention is changing; retry shortly.")
