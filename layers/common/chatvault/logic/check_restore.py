"""After a restore, before anyone reads it: remove every conversation whose key is gone (the operator's
`make admin ARGS="restore-check"`; README, "Restoring a backup").

A backup or a point-in-time restore of the sessions table holds conversations erased since (the panic
button, erase-all, an operator's erase, expiry). Their content opens under no key (each conversation's
key was deleted first, and the keys table has no backups), so nobody can read them; this removes them
too, so that a restored table holds nothing an erase was meant to remove. Conversations whose key is
still there are kept whole. Partitions written before conversations had keys (plaintext) have no key
to lose: they are counted and left as they are (encrypt them first: `make admin ARGS="seal-legacy"`).
Safe to run twice, and on the live table: it removes only what can never be read again."""

from __future__ import annotations

from pydantic import BaseModel

from chatvault.core import clock
from chatvault.dal import restore


class RestoreCheck(BaseModel):
    sessions: int = 0  # partitions seen
    kept: int = 0  # keyed, with their key
    legacy: int = 0  # written before conversations had keys: left as they are
    removed_sessions: int = 0  # keyed, without a key: removed
    removed_items: int = 0
    dry_run: bool = False


def check_restore(dry_run: bool = False) -> RestoreCheck:
    at = clock.now()
    report = RestoreCheck(dry_run=dry_run)
    keyed: dict[str, list[str]] = {}
    for session_id, sort_keys, has_key in restore.partitions():
        report.sessions += 1
        if has_key:
            keyed[session_id] = sort_keys
        else:
            report.legacy += 1
    live = restore.live_keys(list(keyed), at)
    for session_id, sort_keys in keyed.items():
        if session_id in live:
            report.kept += 1
            continue
        report.removed_sessions += 1
        report.removed_items += len(sort_keys) if dry_run else restore.remove(session_id, sort_keys)
    return report
