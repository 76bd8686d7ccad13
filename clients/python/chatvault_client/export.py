"""Opening an export object (docs/API.md, "The sealed export object"): an export too large for one
answer is a link to an object sealed in chunks (`chatvault.export.sealed/1`) under a key of its own,
which the link's answer carries, this once. Every chunk but the last holds `chunk_bytes` of the
plaintext, the last the rest; each is stored as `12-byte nonce | ciphertext | 16-byte tag` (AES-256-GCM),
its associated data `chatvault.export/1|<index>|<1 if last else 0>`, so a chunk moved, dropped or cut
off does not open. Needs `cryptography` (`pip install chatvault-client[export]`)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any

from chatvault_client.errors import ChatVaultClientError
from chatvault_client.models import ExportEncryption

SEALED_FORMAT = "chatvault.export.sealed/1"
NONCE_BYTES = 12
TAG_BYTES = 16


class ExportBrokenError(ChatVaultClientError):
    """The export object does not open under the link's key: changed, cut off, or another object's."""


def _aead(key: str) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise ImportError(
            "opening an export needs cryptography: pip install chatvault-client[export]"
        ) from exc
    return AESGCM(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)))


def opened(pieces: Iterable[bytes], encryption: ExportEncryption) -> Iterator[bytes]:
    """The plaintext of a sealed object, a chunk at a time, from its bytes as they arrive (any sizes).
    A full chunk is opened once more bytes follow it: the last one is known only at the end."""
    if encryption.algorithm != "AES-256-GCM" or encryption.format != SEALED_FORMAT:
        raise ExportBrokenError(f"an export sealed as {encryption.format} cannot be opened here")
    aead = _aead(encryption.key)
    from cryptography.exceptions import InvalidTag

    sealed_size = encryption.chunk_bytes + NONCE_BYTES + TAG_BYTES
    held = bytearray()
    index = 0

    def open_chunk(chunk: bytes, last: bool) -> bytes:
        if len(chunk) < NONCE_BYTES + TAG_BYTES:
            raise ExportBrokenError("the export is cut off")
        where = f"chatvault.export/1|{index}|{1 if last else 0}".encode()
        try:
            return bytes(aead.decrypt(chunk[:NONCE_BYTES], chunk[NONCE_BYTES:], where))
        except InvalidTag:
            raise ExportBrokenError("the export does not open under its key") from None

    for piece in pieces:
        held += piece
        start = 0
        while len(held) - start > sealed_size:
            yield open_chunk(bytes(held[start : start + sealed_size]), last=False)
            start += sealed_size
            index += 1
        del held[:start]
    yield open_chunk(bytes(held), last=True)
