"""What a restore check reads and removes (logic/check_restore.py): the sessions table's partitions, by
a Scan (a restored table is read once, whole), and the keys table beside it.

A partition is *keyed* when anything in it was written under a conversation key: its session item
says when its key expires (`key_expires_at`), or one of its items holds a sealed value (a binary
attribute: nothing else in the table is binary). A keyed partition whose key is gone from the keys
table (erased, expired) can never be read again; a partition written before conversations had keys
(plaintext, no key to lose) is left as it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import batched
from typing import Any

from chatvault.dal import connection
from chatvault.dal.conversation_keys import KeyItem
from chatvault.dal.items import ChatItem, StoredKey
from chatvault.dal.retry import storage_errors, write_batch

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
