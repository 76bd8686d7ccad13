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
from typing import Any, Literal

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


# ---- export objects (dal/exports.py): a stream sealed chunk by chunk ---------------------------------
#
# An export too large for one response is stored in the bucket sealed under a key of its own, derived
# from its conversation's key and the object's name (`export_key`), and answered with that key, this
# once: nobody else can open it, a copy under another name opens under no key, and once the
# conversation's key is erased nobody can derive it again. The object is written part by part, so it
# is sealed in chunks (the `chatvault.export.sealed/1` format, docs/API.md): the plaintext is cut into
# CHUNK_BYTES pieces (every one full but the last, which holds the rest: 1..CHUNK_BYTES bytes, none
# only when the export is empty), and each is stored as
#
#     12-byte random nonce | ciphertext | 16-byte tag
#
# (AESGCM's output after the nonce), its associated data naming its index and whether it is the last
# (`chunk_place`), so that chunks cannot be reordered, dropped or cut off at a chunk's end.

EXPORT_SEALED_FORMAT: Literal["chatvault.export.sealed/1"] = "chatvault.export.sealed/1"
CHUNK_BYTES = 1024 * 1024  # plaintext bytes of every chunk but the last
TAG_BYTES = 16
CHUNK_OVERHEAD = NONCE_BYTES + TAG_BYTES  # bytes a sealed chunk adds to its plaintext


def export_key(conversation_key: bytes, session_id: str, object_key: str) -> bytes:
    """The key one export object is sealed under: HKDF-SHA256 of the conversation's key, bound to the
    session and the object's name."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    info = f"chatvault/export/1|{session_id}|{object_key}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(conversation_key)


def chunk_place(index: int, last: bool) -> bytes:
    """A chunk's associated data: where it sits in the stream, and whether the stream ends with it."""
    return f"chatvault.export/1|{index}|{1 if last else 0}".encode()


class ChunkSealer:
    """Seals a stream written piece by piece: `feed` returns the chunks its data completes (a full
    chunk is sealed once more data follows it, so that the last chunk is known to be the last), `end`
    the last chunk. Holds at most one chunk of plaintext beyond what it was just fed."""

    def __init__(self, key: bytes, chunk_bytes: int | None = None) -> None:
        self._aead = _aead(key)
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self._held = bytearray()
        self._index = 0

    def feed(self, data: bytes) -> bytes:
        self._held += data
        sealed = bytearray()
        start = 0
        while len(self._held) - start > self.chunk_bytes:
            sealed += self._seal(bytes(self._held[start : start + self.chunk_bytes]), last=False)
            start += self.chunk_bytes
        del self._held[:start]
        return bytes(sealed)

    def end(self) -> bytes:
        last = self._seal(bytes(self._held), last=True)
        self._held = bytearray()
        return last

    def _seal(self, plaintext: bytes, *, last: bool) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed: bytes = self._aead.encrypt(nonce, plaintext, chunk_place(self._index, last))
        self._index += 1
        return nonce + sealed


def seal_chunks(key: bytes, plaintext: bytes, chunk_bytes: int | None = None) -> bytes:
    """A whole plaintext sealed as one stream."""
    sealer = ChunkSealer(key, chunk_bytes)
    return sealer.feed(plaintext) + sealer.end()


def unseal_chunks(key: bytes, sealed: bytes, chunk_bytes: int | None = None) -> bytes:
    """The plaintext of a sealed stream: every chunk opened at its place, the last as the last. A
    chunk reordered, dropped, changed or cut off, or an object sealed under another key or name, is
    SealBroken."""
    from cryptography.exceptions import InvalidTag

    aead = _aead(key)
    stored = (chunk_bytes or CHUNK_BYTES) + CHUNK_OVERHEAD
    count = max(1, -(-len(sealed) // stored))  # every chunk full-size but the last
    opened = bytearray()
    for index in range(count):
        chunk = sealed[index * stored : (index + 1) * stored]
        last = index == count - 1
        if len(chunk) < CHUNK_OVERHEAD:
            raise SealBroken("not a sealed chunk")
        try:
            opened += aead.decrypt(chunk[:NONCE_BYTES], chunk[NONCE_BYTES:], chunk_place(index, last))
        except InvalidTag:
            raise SealBroken("the chunk does not open here") from None
    return bytes(opened)
