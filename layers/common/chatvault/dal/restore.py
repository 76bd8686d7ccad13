"""What a restore check reads and removes (logic/check_restore.py): the sessions table's partitions, by
a Scan (a restored table is read once, whole), and the keys table beside it.

A partition is *keyed* when anything in it was written under a conversation key: its session item
says when its key expires (`key_expires_at`), or one of its items holds a sealed value (a binary
attribute: nothing else in the table is binary). A keyed partition whose key is gone from the keys
table (erased, expired) can never be read again; a partition written before conversations had keys
(plaintext, no key to lose) is left as it is.

What a restore copy (logic/copy_restore.py) reads from a restored table and writes back into the live
one: below, "restore-copy"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import batched
from typing import Any, cast

from pynamodb.constants import ITEM
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition

from chatvault.core.errors import StorageUnavailableError
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import ChatItem, SessionItem, StoredKey
from chatvault.dal.aws.keys import SESSION_SK
from chatvault.dal.aws.retry import (
    BATCH_ATTEMPTS,
    TRANSACTION_ATTEMPTS,
    is_transient,
    pause,
    storage_errors,
    write_batch,
)
from chatvault.dal.aws.transaction import CONDITION_FAILED, Refused
from chatvault.dal.conversation_keys import KeyItem

KEY_EXPIRY = "key_expires_at"


def _keyed(item: dict[str, Any]) -> bool:
    return KEY_EXPIRY in item or any("B" in value for value in item.values())


@storage_errors
def partitions() -> Iterator[tuple[str, list[str], bool]]:
    """Each partition of the sessions table: its session id, its items' sort keys, and whether it is
    keyed. One Scan, page by page (items are held as keys only, never their content)."""
    found: dict[str, tuple[list[str], bool]] = {}
    start: dict[str, Any] | None = None
    table = connection.of(ChatItem)
    while True:
        # PynamoDB types the start key as a hash key, and passes a LastEvaluatedKey through as it is
        page = table.scan(ChatItem.Meta.table_name, exclusive_start_key=start, consistent_read=True)  # type: ignore[arg-type]
        for item in page.get("Items", []):
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            sort_keys, keyed = found.get(pk, ([], False))
            sort_keys.append(sk)
            found[pk] = (sort_keys, keyed or _keyed(item))
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    for pk, (sort_keys, keyed) in found.items():
        yield pk, sort_keys, keyed


@storage_errors
def live_keys(session_ids: list[str], at: datetime) -> set[str]:
    """Which of these sessions still have a key (present and within its TTL): 100 a BatchGetItem."""
    live: set[str] = set()
    connection.shared(KeyItem)
    for chunk in batched(session_ids, 100, strict=False):
        for item in KeyItem.batch_get(
            list(chunk), consistent_read=True, attributes_to_get=["pk", "expires_at"]
        ):
            if item.expires_at is not None and item.expires_at > at:
                live.add(item.pk)
    return live


@storage_errors
def remove(session_id: str, sort_keys: list[str]) -> int:
    """Delete these items of the partition, 25 a request."""
    return sum(
        write_batch(StoredKey, deletes=[StoredKey(session_id, sk) for sk in chunk])
        for chunk in batched(sort_keys, 25, strict=False)
    )


# ---- restore-copy (logic/copy_restore.py): what it reads from a restored table and writes back ---------
#
# The restored table is another table than the models' (a point-in-time restore always makes a new
# one): it is read through the sessions table's client by name, as raw DynamoDB items, and an item is
# written back as it is stored, attribute for attribute (nothing is lost to a model that does not know
# an attribute). Only the live tables are written.

# What decides whether an item may be copied (never what a person wrote): its keys, its expiry, a
# marker's position, and the session item's key, mark and counters
SUMMARY = (
    "pk",
    "sk",
    "expires_at",
    "position",
    "key_id",
    "deleted_at",
    "erasing",
    "last_position",
    "profile_expires_at",
)
# TransactWriteItems: 100 actions and 4 MB a request; a copy's holds the key's and the session's
# condition checks, so at most 98 Puts, and stays well under the size with room for the checks
MAX_PUTS = 98
MAX_BYTES = 3_500_000

type Raw = dict[str, Any]  # an item as DynamoDB answers it, {"attribute": {"S": "..."}}


def _client() -> Any:
    return connection.of(ChatItem).client


def _projection() -> dict[str, Any]:
    names = {f"#a{n}": name for n, name in enumerate(SUMMARY)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def _summaries_of(table: str, session_id: str) -> Iterator[Raw]:
    """A partition's items' SUMMARY attributes, page by page (strongly consistent Queries)."""
    projection = _projection()
    start: dict[str, Any] | None = None
    while True:
        page = _client().query(
            TableName=table,
            KeyConditionExpression="#a0 = :pk",  # SUMMARY[0], the partition key
            ExpressionAttributeValues={":pk": {"S": session_id}},
            ConsistentRead=True,
            **projection,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


@storage_errors
def summaries(table: str, session_ids: list[str] | None = None) -> dict[str, dict[str, Raw]]:
    """The partitions of `table` (a restored copy of the sessions table): session id -> sort key ->
    the item's SUMMARY attributes. One Scan, page by page; with `session_ids`, one Query each."""
    found: dict[str, dict[str, Raw]] = {}
    if session_ids is not None:
        for session_id in session_ids:
            partition = {raw["sk"]["S"]: raw for raw in _summaries_of(table, session_id)}
            if partition:
                found[session_id] = partition
        return found
    start: dict[str, Any] | None = None
    while True:
        page = _client().scan(
            TableName=table,
            ConsistentRead=True,
            **_projection(),
            **({"ExclusiveStartKey": start} if start else {}),
        )
        for raw in page.get("Items", []):
            found.setdefault(raw["pk"]["S"], {})[raw["sk"]["S"]] = raw
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


@storage_errors
def live_summary(session_id: str) -> dict[str, Raw]:
    """The live table's part of the partition, as `summaries` reads it: one strongly consistent Query."""
    return {raw["sk"]["S"]: raw for raw in _summaries_of(ChatItem.Meta.table_name, session_id)}


@storage_errors
def live_key_items(session_ids: list[str]) -> dict[str, KeyItem]:
    """The key items these sessions have in the keys table (whatever their TTL): 100 a BatchGetItem."""
    connection.shared(KeyItem)
    found: dict[str, KeyItem] = {}
    for chunk in batched(session_ids, 100, strict=False):
        for item in KeyItem.batch_get(list(chunk), consistent_read=True):
            found[item.pk] = item
    return found


@storage_errors
def items(table: str, session_id: str, sort_keys: list[str]) -> list[Raw]:
    """These items of the partition in `table`, whole, in the order asked (BatchGetItem, 100 keys a
    request; what DynamoDB leaves unprocessed is asked again after a pause). An item no longer there
    is left out."""
    found: dict[str, Raw] = {}
    for chunk in batched(sort_keys, 100, strict=False):
        wanted: list[Raw] = [{"pk": {"S": session_id}, "sk": {"S": sk}} for sk in chunk]
        for attempt in range(BATCH_ATTEMPTS):
            answer = _client().batch_get_item(RequestItems={table: {"Keys": wanted, "ConsistentRead": True}})
            for raw in answer.get("Responses", {}).get(table, []):
                found[raw["sk"]["S"]] = raw
            wanted = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not wanted:
                break
            pause(attempt, base=0.02, cap=1.0)
        else:
            raise StorageUnavailableError()
    return [found[sk] for sk in sort_keys if sk in found]


def size(raw: Raw) -> int:
    """An item's size as DynamoDB counts it (attribute names and values; numbers by their digits, an
    upper bound)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in raw.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, held),) = value.items()
    if kind == "M":
        return 3 + size(held)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in held)
    if kind in ("SS", "NS", "BS"):
        return sum(_scalar_size(v) for v in held)
    return _scalar_size(held) if kind in ("S", "N", "B") else 1  # BOOL, NULL: one byte


def _scalar_size(held: Any) -> int:
    return len(held) if isinstance(held, bytes | bytearray) else len(str(held).encode())


def batches(raws: list[Raw]) -> Iterator[list[Raw]]:
    """The items in order, as many a transaction as fit one (MAX_PUTS, MAX_BYTES)."""
    batch: list[Raw] = []
    held = 0
    for raw in raws:
        weight = size(raw)
        if batch and (len(batch) == MAX_PUTS or held + weight > MAX_BYTES):
            yield batch
            batch, held = [], 0
        batch.append(raw)
        held += weight
    if batch:
        yield batch


@dataclass(frozen=True)
class Guard:
    """What the live session item must still be when a copy's batch is written beside it: there, not
    being erased, not expired, sealed under the same key as the copy (`key_id`; None: a legacy one,
    unkeyed), and past the highest position the batch writes (`at_least`)."""

    key_id: str | None
    at_least: str | None = None


def _guarded(guard: Guard, at: datetime) -> Condition:
    condition = (
        SessionItem.pk.exists()
        & SessionItem.deleted_at.does_not_exist()
        & SessionItem.erasing.does_not_exist()
        & (SessionItem.expires_at > at)
    )
    if guard.key_id is None:
        condition &= SessionItem.key_id.does_not_exist()
    else:
        condition &= SessionItem.key_id == guard.key_id
    if guard.at_least is not None:
        condition &= SessionItem.last_position >= guard.at_least
    return cast(Condition, condition)


@storage_errors
def put_absent(
    session_id: str, raws: list[Raw], *, key: KeyItem | None, guard: Guard | None, at: datetime
) -> None:
    """Write these items of the partition into the live table, each only if absent
    (`attribute_not_exists(pk)`), in one TransactWriteItems beside its condition checks: "key", the
    conversation's key item still there, within its TTL and the very key read (`key`; None: a legacy
    partition, no key), and "session", the live session item as `guard` says (None: the batch writes
    the session item itself). Refused (dal/aws/transaction.py), naming the checks and the items by their
    sort keys, when a condition failed: nothing was written. A conflict with another transaction is
    sent again, as Transaction.commit does."""
    table = connection.of(ChatItem)
    names: list[str] = []
    checks: list[dict[str, Any]] = []
    if key is not None:
        connection.shared(KeyItem)
        condition = KeyItem.pk.exists() & (KeyItem.expires_at > at) & (KeyItem.wrapped == key.wrapped)
        checks.append(KeyItem.get_operation_kwargs_from_class(session_id, condition=condition))
        names.append("key")
    if guard is not None:
        checks.append(
            SessionItem.get_operation_kwargs_from_class(session_id, SESSION_SK, condition=_guarded(guard, at))
        )
        names.append("session")
    puts = []
    for raw in raws:
        attributes = {name: value for name, value in raw.items() if name not in ("pk", "sk")}
        puts.append(
            table.get_operation_kwargs(
                ChatItem.Meta.table_name,
                session_id,
                raw["sk"]["S"],
                key=ITEM,
                attributes=attributes,
                condition=ChatItem.pk.does_not_exist(),
            )
        )
        names.append(raw["sk"]["S"])
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            table.transact_write_items(
                condition_check_items=checks, delete_items=[], put_items=puts, update_items=[]
            )
            return
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            if any(r is not None and r.code == CONDITION_FAILED for r in reasons):
                raise Refused(dict(zip(names, reasons, strict=False))) from exc
            if attempt == TRANSACTION_ATTEMPTS - 1 or not is_transient(exc):
                raise
        pause(attempt)
