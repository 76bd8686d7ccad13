"""Sealing what a person wrote under their conversation's own key (crypto-shredding: README, "What an
erased conversation leaves behind").

AES-256-GCM (`cryptography`, already in the layer for JWT verification): authenticated, so a changed
byte fails to open rather than opening to something else. Each sealed value is

    b"\\x01" | 12-byte random nonce | ciphertext | 16-byte tag

and is bound to where it is stored: the associated data names the session, the item's sort key and
the field, so a value copied to another item, another field or another session does not open there.
A random 96-bit nonce per value keeps the chance of a repeat under one key negligible for far more
values than a session can hold (MaxSessionMessages, with every edit of its title)."""

from __future__ import annotations

import json
import os
from typing import Any

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
OVERHEAD = len(VERSION) + NONCE_BYTES + 16  # bytes a sealed value adds to its plaintext


class SealBroken(Exception):
    """The value does not open under this key and place: another key (an erased conversation's copy),
    another item, or changed bytes."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def ready() -> None:
    """Import the cipher now (about 10 ms, once per process): under SnapStart, before the snapshot."""
    _aead(bytes(KEY_BYTES))


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only where something is sealed

    return AESGCM(key)


def place(session_id: str, sort_key: str, field: str) -> bytes:
    """The associated data: which session, which item, which field."""
    return f"chatvault/v1|{session_id}|{sort_key}|{field}".encode()


def seal(key: bytes, where: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    sealed: bytes = _aead(key).encrypt(nonce, plaintext, where)
    return VERSION + nonce + sealed


def unseal(key: bytes, where: bytes, sealed: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    if sealed[:1] != VERSION or len(sealed) < OVERHEAD:
        raise SealBroken("not a sealed value")
    try:
        return bytes(_aead(key).decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], where))
    except InvalidTag:
        raise SealBroken("the value does not open here") from None


def seal_json(key: bytes, where: bytes, value: Any) -> bytes:
    return seal(key, where, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def unseal_json(key: bytes, where: bytes, sealed: bytes) -> Any:
    return json.loads(unseal(key, where, sealed))
