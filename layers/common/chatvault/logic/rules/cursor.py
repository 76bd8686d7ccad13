"""Opaque page cursors: a DynamoDB key, bound to the list it came from and sealed with a checksum,
so a tampered or foreign cursor is a clean 400. Authorization never rests on a cursor: every page
re-checks the caller, and a cursor only moves within the caller's own items."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Collection
from typing import Any

from chatvault.core.errors import InvalidCursorError

_SEAL_KEY = b"chatvault-cursor-v1"
_SEAL_BYTES = 12
# The longest cursor this service writes is a few hundred characters; anything longer is not one of
# ours (400 invalid_cursor, as the contract says, rather than a 422 for the query parameter's length).
MAX_CURSOR_CHARS = 2048


def _seal(payload: bytes) -> bytes:
    return hmac.new(_SEAL_KEY, payload, hashlib.sha256).digest()[:_SEAL_BYTES]


def encode(scope: str, key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    payload = json.dumps({"s": scope, "k": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(_seal(payload) + payload).decode().rstrip("=")


def decode(scope: str, cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    return decode_any([scope], cursor)[1]


def decode_field(scope: str, cursor: str | None, field: str, valid: Callable[[str], bool]) -> str | None:
    """A cursor whose key is one string (the last id or position of the page before): that value, None
    without a cursor, 400 when it is not one this list would have written."""
    key = decode(scope, cursor)
    if key is None:
        return None
    value = key.get(field)
    if set(key) != {field} or not isinstance(value, str) or not valid(value):
        raise InvalidCursorError()
    return value


def decode_any(scopes: Collection[str], cursor: str) -> tuple[str, dict[str, Any]]:
    """A cursor that may come from any of several lists (one history in either order): the scope it
    was issued for, and its key."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursorError()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != cursor:
            raise InvalidCursorError()  # not in the canonical form this service writes
        seal, payload = raw[:_SEAL_BYTES], raw[_SEAL_BYTES:]
        if len(seal) != _SEAL_BYTES or not hmac.compare_digest(seal, _seal(payload)):
            raise InvalidCursorError()
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError() from exc
    if not isinstance(data, dict) or not isinstance(data.get("k"), dict):
        raise InvalidCursorError()
    scope = data.get("s")
    if not isinstance(scope, str) or scope not in scopes:
        raise InvalidCursorError()
    key: dict[str, Any] = data["k"]
    return scope, key
