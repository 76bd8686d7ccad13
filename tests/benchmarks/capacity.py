"""DynamoDB capacity units, computed from the items each request names, as DynamoDB bills them
(on-demand: request units).

- Item size: attribute names plus values (strings in UTF-8, numbers about one byte per two digits).
- Writes: one unit per KB of the item (an update counts the larger of the item before and after;
  the stored item after the request is read back to size it), twice that inside a transaction.
- Reads: one unit per 4 KB (strongly consistent; half when eventually consistent), summed over a
  Query's items and rounded up once; a GetItem or a key of a BatchGetItem costs at least one unit.
  A BatchGetItem with a projection (ProjectionExpression, AttributesToGet) costs what it would without
  one: DynamoDB sizes the whole item it reads, so each key's item is sized as stored.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

Lookup = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def item_bytes(item: dict[str, Any]) -> int:
    size = 0
    for name, value in item.items():
        size += len(name.encode()) + _value_bytes(value)
    return size


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return len(raw.strip("-").replace(".", "")) // 2 + 2
    if kind == "B":  # base64 in a request's JSON; bytes in an answer botocore has parsed
        return len(raw) if isinstance(raw, bytes) else len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_bytes(v) for k, v in raw.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in raw)
    if kind in ("SS", "NS"):
        return sum(len(str(v).encode()) for v in raw)
    raise AssertionError(f"unexpected attribute type {kind}")


def _write(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read(size: int) -> int:
    return max(1, math.ceil(size / 4096))


def units(operation: str, body: bytes, answer: dict[str, Any] | None, stored: Lookup) -> tuple[float, float]:
    """(read units, write units) of one request; `stored(table, key)` reads an item as it is now."""
    request = json.loads(body or b"{}")
    consistent = 1.0 if request.get("ConsistentRead") else 0.5
    answer = answer or {}
    if operation == "GetItem":
        return consistent * _read(item_bytes(answer.get("Item", {}))), 0.0
    if operation == "BatchGetItem":
        reads = 0.0
        for table, ask in request["RequestItems"].items():
            found = answer.get("Responses", {}).get(table, [])
            factor = 1.0 if ask.get("ConsistentRead") else 0.5
            if "ProjectionExpression" in ask or "AttributesToGet" in ask:  # the answer is not the item read
                reads += factor * sum(_read(item_bytes(stored(table, key) or {})) for key in ask["Keys"])
                continue
            reads += factor * (sum(_read(item_bytes(i)) for i in found) + len(ask["Keys"]) - len(found))
        return reads, 0.0
    if operation in ("Query", "Scan"):
        return consistent * _read(sum(item_bytes(i) for i in answer.get("Items", []))), 0.0
    if operation == "PutItem":
        return 0.0, float(_write(item_bytes(request["Item"])))
    if operation == "UpdateItem":
        return 0.0, float(_write(item_bytes(stored(request["TableName"], request["Key"]) or {})))
    if operation == "DeleteItem":
        return 0.0, 1.0
    if operation == "BatchWriteItem":
        writes = 0
        for entries in request["RequestItems"].values():
            for entry in entries:
                writes += _write(item_bytes(entry["PutRequest"]["Item"])) if "PutRequest" in entry else 1
        return 0.0, float(writes)
    if operation == "TransactWriteItems":
        writes = 0
        for entry in request["TransactItems"]:
            ((kind, part),) = entry.items()
            if kind == "Put":
                writes += 2 * _write(item_bytes(part["Item"]))
            elif kind == "Update":
                writes += 2 * _write(item_bytes(stored(part["TableName"], part["Key"]) or {}))
            else:  # Delete, ConditionCheck
                writes += 2
        return 0.0, float(writes)
    return 0.0, 0.0  # S3 and Secrets Manager: not DynamoDB capacity
