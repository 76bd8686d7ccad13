"""After a restore: copy back into the live sessions table what it lost since (the operator's
`make admin ARGS="restore-copy --table <restored>"`; README, "Restoring a backup"), without touching
anything live and without ever bringing back an erased conversation.

A point-in-time restore makes a new table; `restore-check --table <restored>` first removes from it
what was erased since. This copies from it the items the live table no longer holds (deleted by
mistake, or by a bug), partition by partition (a partition is a conversation: `pk = <session_id>`):

- Absent only: each item is put on condition that the live table has no item under its key
  (`attribute_not_exists(pk)`). What is live wins, and is never overwritten: an item present but
  damaged is not repaired by this command (it is counted as `present`).
- Never an erased conversation. A keyed partition is copied only while its key is live: the key
  item is read first (it must be the very key the restored session item names, `key_id`, within
  its TTL), and every batch is one TransactWriteItems holding a ConditionCheck on that key item
  (there, within its TTL, the same wrapped key) beside its Puts, so nothing is written unless the
  conversation's key exists at that instant. A legacy partition (plaintext, written before
  conversations had keys) has no key to check: it is not copied when the audit trail records an
  erase of its session (its entries last AuditRetentionDays, 400 by default, beyond any
  point-in-time window of 35 days; a deployment that keeps them less than the restore's age cannot
  be told). A restored session item marked for erasure (`deleted_at`) is never copied.
- Never an expired item (its `expires_at` past).
- Never an item that would break what an append relies on: its session item's counters
  (`message_count`, `last_position`) agree with the messages stored, every position is below
  `last_position`, and every item is sealed under the key the session item names. So:
  - the live session item absent: the partition is copied whole (what is absent of it, its session
    item first), and only when every item the live table still holds of it is one the restored
    partition holds too (nothing was written since that the restored counters do not count); the
    restored session item then brings its counters, consistent with the messages it counted;
  - the live session item present (some messages deleted by a bug): only messages, and idempotency
    markers, at or below the live session's `last_position` (they were appended, and counted, before
    it: the count does not change), its profile (title, metadata; its TTL raised to the one the
    live session expects of it, `profile_expires_at`) and upload records, and only when the live
    session is the same conversation (the same `key_id`, or both legacy), not being erased and not
    expired. Each batch holds a ConditionCheck on the live session item saying so (there, not
    marked, not expired, the same key, `last_position` at or past the batch's highest position).
    The live session item itself is never written.
  Anything else the restored partition holds is left (`skipped_unsafe`): messages or markers above
  the live `last_position`, a partition whose live part holds items the restored one does not, a
  partition without a session item.
A batch refused because an item appeared meanwhile, or the live session changed, is planned again
from a new read of the live partition (so a concurrent append or create wins); one refused because
the key is gone counts the conversation as `skipped_erased`. An erase racing with the copy can
still leave leftovers of what was written before it (under a key now gone): the runbook's last
step, `restore-check` on the live table, removes them.

Items only: uploaded files are not in the table (the bucket keeps no versions: a file the sweep
removed with its lost session is not brought back by this), nor are audit entries or keys. Safe to
run twice: the second run finds everything present. `--dry-run` reads everything and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import batched
from typing import Any

from pydantic import BaseModel

from chatvault.core import clock
from chatvault.core.errors import StorageUnavailableError
from chatvault.core.settings import get_settings
from chatvault.dal import audit, conversation_keys, restore
from chatvault.dal.aws.keys import MESSAGE_ID_PREFIX, MESSAGE_PREFIX, PROFILE_SK, SESSION_SK, UPLOAD_PREFIX
from chatvault.dal.aws.retry import TRANSACTION_ATTEMPTS
from chatvault.dal.aws.transaction import Refused
from chatvault.dal.conversation_keys import KeyItem

# What the audit trail records of an erase (logic/rules/erase.py)
ERASED_EVENTS = frozenset({"session_deleted", "interrupted_delete_finished", "erased_by_operator"})


class RestoreCopy(BaseModel):
    sessions: int = 0  # partitions of the restored table seen
    copied_sessions: int = 0  # partitions of which at least one item was written
    copied_items: int = 0  # items written into the live table
    present: int = 0  # items the live table already holds: left as they are, never overwritten
    # partitions not copied: erased (key gone or not the one named, erase begun, erase audited), or
    # the live session under that id is another conversation or was sealed since
    skipped_erased: int = 0
    skipped_expired: int = 0  # items past their expiry (every item of an expired conversation)
    skipped_unsafe: int = 0  # items held back: copying them could break the live session's counters
    legacy: int = 0  # partitions written before conversations had keys (plaintext), whatever became of them
    dry_run: bool = False


@dataclass
class Plan:
    """What one attempt does with a restored partition, given the live one."""

    copy: list[str] = field(default_factory=list)  # sort keys to put, the session item first
    present: set[str] = field(default_factory=set)
    expired: int = 0
    unsafe: int = 0
    erased: bool = False
    guard: restore.Guard | None = None  # the live session item, for the batches that do not write it
    profile_floor: int | None = None  # the TTL the live session expects of its profile


def _text(raw: dict[str, Any] | None, name: str) -> str | None:
    value = (raw or {}).get(name)
    return str(value["S"]) if value and "S" in value else None


def _number(raw: dict[str, Any] | None, name: str) -> int | None:
    value = (raw or {}).get(name)
    return int(float(value["N"])) if value and "N" in value else None


def _expired(raw: dict[str, Any], at: datetime) -> bool:
    expires_at = _number(raw, "expires_at")
    return expires_at is not None and expires_at <= at.timestamp()


def _marked(session: dict[str, Any]) -> bool:
    """An erase of the session has begun (dal/erasure.py mark_erasing)."""
    return "deleted_at" in session or "erasing" in session


def _position(sort_key: str, raw: dict[str, Any]) -> str | None:
    """The position a message or an idempotency marker stands for."""
    if sort_key.startswith(MESSAGE_PREFIX):
        return sort_key.removeprefix(MESSAGE_PREFIX)
    if sort_key.startswith(MESSAGE_ID_PREFIX):
        return _text(raw, "position")
    return None


def _beside_live(sort_key: str, raw: dict[str, Any], last_position: str | None) -> bool:
    """May this item join a live session whose last position is `last_position`?"""
    if sort_key == PROFILE_SK or sort_key.startswith(UPLOAD_PREFIX):
        return True
    position = _position(sort_key, raw)
    return position is not None and last_position is not None and position <= last_position


def plan(restored: dict[str, Any], live: dict[str, Any], at: datetime) -> Plan:
    """The module docstring's rule, for a restored partition (sort key -> SUMMARY) and the live one."""
    planned = Plan()
    absent: list[str] = []
    for sort_key, raw in restored.items():
        if sort_key in live:
            planned.present.add(sort_key)
        elif _expired(raw, at):
            planned.expired += 1
        else:
            absent.append(sort_key)
    session, live_session = restored.get(SESSION_SK), live.get(SESSION_SK)
    if session is None:  # nothing of the partition can be read without it
        planned.unsafe += len(absent)
    elif live_session is None:
        _whole(planned, absent, session, set(live) <= set(restored), at)
    else:
        _beside(planned, absent, restored, live_session, at)
    return planned


def _whole(planned: Plan, absent: list[str], session: dict[str, Any], counted: bool, at: datetime) -> None:
    """The live session item is absent: the partition comes back whole, its session item first, if
    the restored session counts everything the live partition still holds (`counted`)."""
    if _expired(session, at):  # the conversation has expired: nothing of it comes back
        planned.expired += len(absent)
    elif not counted:  # written since: the restored counters do not count it
        planned.unsafe += len(absent)
    else:
        planned.copy = sorted(absent, key=lambda sort_key: sort_key != SESSION_SK)
        planned.guard = restore.Guard(_text(session, "key_id"))


def _beside(
    planned: Plan, absent: list[str], restored: dict[str, Any], live_session: dict[str, Any], at: datetime
) -> None:
    """The live session item is there: what it already counts comes back beside it, if it is the same
    conversation, live."""
    key_id = _text(restored[SESSION_SK], "key_id")
    if _marked(live_session) or _text(live_session, "key_id") != key_id:
        planned.erased = True  # being erased, or another conversation (or sealed since) under the id
        return
    if _expired(live_session, at):
        planned.expired += len(absent)
        return
    last_position = _text(live_session, "last_position")
    for sort_key in absent:
        if _beside_live(sort_key, restored[sort_key], last_position):
            planned.copy.append(sort_key)
        else:
            planned.unsafe += 1
    planned.guard = restore.Guard(key_id)
    planned.profile_floor = _number(live_session, "profile_expires_at")


def _erased_in_audit(session_id: str) -> bool:
    return any(entry.event in ERASED_EVENTS for entry in audit.trail(session_id))


def _write(
    table: str, session_id: str, planned: Plan, *, key: KeyItem | None, at: datetime, written: set[str]
) -> None:
    """Put the planned items, batch by batch (restore.batches), adding each batch written to `written`.
    Refused (nothing of that batch written) when a condition failed."""
    assert planned.guard is not None
    for chunk in batched(planned.copy, restore.MAX_PUTS, strict=False):
        raws = restore.items(table, session_id, list(chunk))
        for raw in raws:
            if raw["sk"]["S"] == PROFILE_SK and planned.profile_floor is not None:
                expires_at = max(_number(raw, "expires_at") or 0, planned.profile_floor)
                raw["expires_at"] = {"N": str(expires_at)}
        for batch in restore.batches(raws):
            sort_keys = [raw["sk"]["S"] for raw in batch]
            positions = [p for raw in batch if (p := _position(raw["sk"]["S"], raw)) is not None]
            guard = (
                None  # the batch writes the session item itself (absent: its Put's condition)
                if SESSION_SK in sort_keys
                else replace(planned.guard, at_least=max(positions) if positions else None)
            )
            restore.put_absent(session_id, batch, key=key, guard=guard, at=at)
            written.update(sort_keys)


def _copy(
    table: str,
    session_id: str,
    restored: dict[str, Any],
    *,
    key: KeyItem | None,
    report: RestoreCopy,
) -> None:
    """One partition. Each attempt reads the clock afresh (expiries, the key's TTL): a copy of a large
    table takes a while."""
    at = clock.now()
    session = restored.get(SESSION_SK)
    key_id = _text(session, "key_id")
    if session is not None and key_id is None:
        report.legacy += 1
    erased = session is not None and (
        _marked(session)
        or (key_id is not None and (key is None or conversation_keys.name_of(key, at) != key_id))
    )
    written: set[str] = set()
    planned = Plan()
    if not erased:
        for _ in range(TRANSACTION_ATTEMPTS):
            at = clock.now()
            planned = plan(restored, restore.live_summary(session_id), at)
            legacy_whole = key_id is None and SESSION_SK in planned.copy
            erased = planned.erased or (legacy_whole and _erased_in_audit(session_id))
            if erased or report.dry_run or not planned.copy:
                break
            try:
                _write(table, session_id, planned, key=key, at=at, written=written)
                break
            except Refused as refused:
                if refused.failed("key"):  # erased meanwhile
                    erased = True
                    break
                # else an item appeared, or the live session changed: plan again from what is live now
        else:
            raise StorageUnavailableError(
                f"session {session_id}: its live partition kept changing under the copy; run again."
            )
    copied = len(planned.copy) if report.dry_run and not erased else len(written)
    report.copied_items += copied
    report.copied_sessions += 1 if copied else 0
    if erased:
        report.skipped_erased += 1
        return
    report.present += len(planned.present - written)
    report.skipped_expired += planned.expired
    report.skipped_unsafe += planned.unsafe


def copy_restore(table: str, session_ids: list[str] | None = None, dry_run: bool = False) -> RestoreCopy:
    """Copy from the restored table `table` into the live sessions table what the live one lacks
    (module docstring); `session_ids`: only these conversations."""
    if table == get_settings().table_name:
        raise ValueError("the restored table is the live table: a restore makes a new one")
    report = RestoreCopy(dry_run=dry_run)
    partitions = restore.summaries(table, session_ids)
    keys = restore.live_key_items(
        [sid for sid, restored in partitions.items() if _text(restored.get(SESSION_SK), "key_id")]
    )
    for session_id, restored in partitions.items():
        report.sessions += 1
        _copy(table, session_id, restored, key=keys.get(session_id), report=report)
    return report
