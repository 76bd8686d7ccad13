"""Each conversation's own key (crypto-shredding), in the keys table: never in the sessions table,
never in a backup (the keys table has no point-in-time recovery and no backups), never in a log.

A key item is `pk = <session_id>`, the data key wrapped (AES-GCM under the deployment's wrapping key,
bound to the session id: dal/secret.py derives it from the deployment's secret), and a TTL no later
than its session's. Erasing a conversation deletes its key first, in the same transaction that marks
the session erased (dal/erasure.py): from then on whatever is left of the conversation, in a backup,
a point-in-time restore, an item TTL has not yet removed or a half-finished erase, opens under no key
the deployment holds.

A warm function keeps the keys it unwrapped for CACHE_SECONDS (in memory only: never written
anywhere), so a session it served in the last minutes costs no read; otherwise one strongly consistent
GetItem (sent beside the request's other reads: no round trip of its own). That a session has no key
(a legacy one, or gone) is kept the same way; on a cold start the deployment's secret is read beside
the key item, not after it."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from functools import lru_cache
from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chatvault.core import clock, seal, snapshot
from chatvault.dal import secret
from chatvault.dal.aws import connection, side_reads
from chatvault.dal.aws.items import SessionItem, TableMeta, TableName
from chatvault.dal.aws.retry import storage_errors
from chatvault.dal.aws.transaction import Transaction
from chatvault.dal.session_items import epoch

CACHE_SECONDS = 300  # how long a warm function keeps an unwrapped key
snapshot.prime(seal.ready)  # under SnapStart, the cipher's import is in the snapshot
_WRAPPED = "data_key"


class KeyItem(Model):
    class Meta(TableMeta):
        table_name = TableName("keys_table")

    pk = UnicodeAttribute(hash_key=True)  # the session id
    wrapped = BinaryAttribute(legacy_encoding=False)
    expires_at = TTLAttribute()
    # the session's own retention (its item's `retention_hours`), held with the key: a writer that
    # slides the session's expiry knows it without reading the session first
    retention_hours = NumberAttribute(null=True)


class _Cache:
    """session id -> (its key, or None: it has none, the monotonic time it was read, the key's expiry
    in epoch seconds, the session's own retention in hours)."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[bytes | None, float, float, int | None]] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str, at: datetime) -> tuple[bool, bytes | None]:
        """(held, the key): held False when this process knows nothing of the session's key."""
        with self._lock:
            found = self._keys.get(session_id)
            if found is None:
                return False, None
            key, read_at, expires, _ = found
            if time.monotonic() - read_at > CACHE_SECONDS or expires <= at.timestamp():
                del self._keys[session_id]
                return False, None
            return True, key

    def expiry(self, session_id: str) -> float | None:
        with self._lock:
            found = self._keys.get(session_id)
            return found[2] if found is not None and found[0] is not None else None

    def retention_hours(self, session_id: str) -> int | None:
        with self._lock:
            found = self._keys.get(session_id)
            return found[3] if found is not None else None

    def put(self, session_id: str, key: bytes | None, expires_at: float, hours: int | None = None) -> None:
        with self._lock:
            self._keys[session_id] = (key, time.monotonic(), expires_at, hours)

    def drop(self, session_id: str | None = None) -> None:
        with self._lock:
            if session_id is None:
                self._keys.clear()
            else:
                self._keys.pop(session_id, None)


_cache = _Cache()


def key_id(key: bytes) -> str:
    """A short name of a key, stored on its session item (`key_id`): which key the session was sealed
    under, so a key cached before its session was erased and created again under the same id is
    told apart from the new one (a truncated hash of a random 256-bit key reveals nothing of it)."""
    return hashlib.sha256(b"chatvault/key-id|" + key).hexdigest()[:16]


def _where(session_id: str) -> bytes:
    return seal.place(session_id, "key", _WRAPPED)


def new(session_id: str, expires_at: datetime, retention_hours: int | None = None) -> tuple[KeyItem, bytes]:
    """A new conversation's key: the item to write (in the create's transaction) and the key itself.
    Not cached: the create remembers it once its transaction is written (`remember`)."""
    key = seal.new_key()
    item = KeyItem(
        session_id,
        wrapped=seal.seal(secret.wrapping_key(), _where(session_id), key),
        expires_at=expires_at,
        retention_hours=retention_hours,
    )
    return item, key


def remember(session_id: str, key: bytes, expires_at: datetime, retention_hours: int | None) -> None:
    """Keep a key this process has just written (a create) or whose TTL it has just moved (an append
    or PATCH that refreshed it), with the session's own retention, until its new expiry or
    CACHE_SECONDS."""
    _cache.put(session_id, key, expires_at.timestamp(), retention_hours)


def _unwrapped(
    item: KeyItem, at: datetime, wrapping_key: Callable[[], bytes] = secret.wrapping_key
) -> bytes | None:
    if item.expires_at is None or item.expires_at <= at:
        return None  # past its TTL, not yet removed: the conversation has expired
    if not item.wrapped:
        return None  # no key in it: never written by `new` (a stray item is no key)
    key = seal.unseal(wrapping_key(), _where(item.pk), item.wrapped)
    hours = int(item.retention_hours) if item.retention_hours is not None else None
    _cache.put(item.pk, key, item.expires_at.timestamp(), hours)
    return key


def name_of(item: KeyItem, at: datetime) -> str | None:
    """The name (`key_id`) of the key a key item holds, as a session item names it; None when it holds
    none or is past its TTL (a restore copy checks that a restored conversation's key is this one)."""
    key = _unwrapped(item, at)
    return key_id(key) if key is not None else None


def cached(session_id: str, at: datetime) -> bytes | None:
    """The key, if this process read it in the last CACHE_SECONDS (no request)."""
    return _cache.get(session_id, at)[1]


def held(session_id: str, at: datetime) -> bool:
    """Does this process know the session's key, or that it has none (a legacy session it served in
    the last CACHE_SECONDS)? Then `read` sends no request."""
    return _cache.get(session_id, at)[0]


def retention_hours(session_id: str) -> int | None:
    """The session's own retention as held with its key (None: the deployment's, or not held; a
    writer conditions on it, and a refusal tells the stored one)."""
    return _cache.retention_hours(session_id)


def trails(session_id: str, moment: datetime) -> bool:
    """Does the key this process holds expire before `moment`? (An append moves its TTL in the same
    write rather than be refused for it: dal/messages.py.) False when none is held."""
    expires = _cache.expiry(session_id)
    return expires is not None and expires < moment.timestamp()


def _wrapping_key_soon() -> Callable[[], bytes]:
    """The wrapping key, read beside the key's own read on a cold start (the deployment's secret and
    the key item in one round trip of latency, not two): call the result once the key item is in."""
    if secret.held():
        return secret.wrapping_key
    return _secret_reads().submit(secret.wrapping_key).result


@lru_cache(maxsize=1)
def _secret_reads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="wrapping-key")


@storage_errors
def read(session_id: str, at: datetime) -> bytes | None:
    """The session's key, or None when it has none (erased, expired, never created, or a legacy
    session): held by this process, else one strongly consistent GetItem. None is remembered too (for
    CACHE_SECONDS): a reader that then finds the session keyed or a value sealed reads afresh
    (`named`, `read_afresh`)."""
    known, key = _cache.get(session_id, at)
    if known:
        return key
    wrapping_key = _wrapping_key_soon()
    connection.shared(KeyItem)
    try:
        item = KeyItem.get(session_id, consistent_read=True)
    except DoesNotExist:
        item = None
    key = _unwrapped(item, at, wrapping_key) if item is not None else None
    if key is None:
        _cache.put(session_id, None, math.inf)
    return key


def read_afresh(session_id: str, at: datetime) -> bytes | None:
    """The key stored now, whatever this process holds: for a reader that found a sealed value after
    reading the session as legacy (`make admin ARGS="seal-legacy"` sealed it in between)."""
    forget(session_id)
    return read(session_id, at)


@storage_errors
def read_many(session_ids: Iterable[str], at: datetime) -> dict[str, bytes]:
    """The keys of several sessions (a list page): those held, and one BatchGetItem for the rest.
    Those without a key are left out."""
    found: dict[str, bytes] = {}
    missing = []
    for session_id in dict.fromkeys(session_ids):
        known, key = _cache.get(session_id, at)
        if key is not None:
            found[session_id] = key
        elif not known:
            missing.append(session_id)
    if missing:
        wrapping_key = _wrapping_key_soon()
        connection.shared(KeyItem)
        for item in KeyItem.batch_get(missing, consistent_read=True):
            key = _unwrapped(item, at, wrapping_key)
            if key is not None:
                found[item.pk] = key
    return found


def named(session_id: str, wanted: str, at: datetime, held: bytes | None) -> bytes | None:
    """The session's key whose name (`key_id`) is `wanted`: `held` when it is that one, else read
    afresh, once (a copy this process held is dropped first: the session was erased and created again
    under the same id since, or given its key since the caller looked); None when the stored key is
    not that one either (gone: erased, expired)."""
    if held is not None and key_id(held) == wanted:
        return held
    key = read_afresh(session_id, at)
    return key if key is not None and key_id(key) == wanted else None


def forget(session_id: str | None = None) -> None:
    """Drop a key from this process's memory (its conversation was erased here), or every key."""
    _cache.drop(session_id)


class KeyGone(Exception):
    """A keyed session whose key is gone: erased, expired, or the session was made again since under
    the same id. Nothing of it can be read: it is answered as missing."""


class KeySoon:
    """A session's key, sent for now beside the read that fetches the session (one GetItem, one round
    trip of latency for both; none when this process holds the key), and checked against the session
    item once that arrives (`named`)."""

    def __init__(self, session_id: str, at: datetime | None = None) -> None:
        self.session_id = session_id
        self.at = at or clock.now()
        self._cached = cached(session_id, self.at)
        self._read: Future[bytes | None] | None = None
        if not held(session_id, self.at):
            if side_reads.on_side_thread():
                # already beside the request's main read: read here rather than wait on the pool
                self._read = Future()
                self._read.set_result(read(session_id, self.at))
            else:
                self._read = side_reads.in_background(read, session_id, self.at)

    def named(self, key_id: str | None) -> bytes | None:
        """The key the session item names (its `key_id`); None for a legacy session (plaintext, no
        key). KeyGone when the session is keyed and its key is gone. A key that is not the one the
        session names is read afresh, once: a cached one (the session was erased and created again
        since it was cached), or none when the read was sent before the session had its key (a legacy
        session given one meanwhile: `make admin ARGS="seal-legacy"`, dal/seal_legacy.py)."""
        if key_id is None:
            return None
        held = self._cached if self._read is None else self._read.result()
        key = named(self.session_id, key_id, self.at, held)
        if key is None:
            raise KeyGone(self.session_id)
        return key

    def settle(self) -> None:
        """Wait for the read, if one was sent, whatever its answer: a request finishes none of its
        reads after it has answered (a legacy or missing session's key is never asked for)."""
        if self._read is not None:
            wait([self._read])


def sealing_key(session_id: str, at: datetime) -> bytes | None:
    """The key a write to the session seals under: held by this process, else one GetItem. None when
    the session has none (legacy, or gone: the write's condition on `key_id` refuses what would be
    wrong)."""
    return read(session_id, at)


def move_key_ttl(
    tx: Transaction, session_id: str, expires_at: datetime, retention: tuple[int | None, ...] = ()
) -> list[Any]:
    """Move the key's TTL to the session's new expiry in this transaction (only if the key is still
    there: never a key item without its key), and set the retention it holds when the write changes
    it (`retention`: one value, or none); the session item's actions that record it."""
    actions: list[Any] = [KeyItem.expires_at.set(expires_at)]
    for hours in retention:
        actions.append(
            KeyItem.retention_hours.set(hours) if hours is not None else KeyItem.retention_hours.remove()
        )
    tx.update("key", KeyItem(session_id), actions, condition=KeyItem.pk.exists())
    return [SessionItem.key_expires_at.set(epoch(expires_at))]
