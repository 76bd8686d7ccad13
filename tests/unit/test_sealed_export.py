"""The export object is sealed (seal.py, `chatvault.export.sealed/1`): its plaintext in chunks, each
sealed at its place in the stream under a key of the object's own, derived from its conversation's
key and its name. Only the answer that links to it carries that key; the bucket holds nothing a
person wrote, and a copy of the object, or of a chunk, opens nowhere else."""

from __future__ import annotations

import uuid

import pytest

from chatvault import seal
from chatvault.dal import exports

SMALL = 16  # chunk bytes for the stream's own tests: many chunks of a few bytes


def _chunks(sealed: bytes, chunk_bytes: int = SMALL) -> list[bytes]:
    size = chunk_bytes + seal.CHUNK_OVERHEAD
    return [sealed[i : i + size] for i in range(0, len(sealed), size)]


# ---- the stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, SMALL - 1, SMALL, SMALL + 1, 2 * SMALL, 5 * SMALL + 3])
def test_a_stream_opens_to_what_was_sealed_at_any_size(size: int) -> None:
    key, plaintext = seal.new_key(), bytes(range(256)) * 2
    plaintext = plaintext[:size]
    sealed = seal.seal_chunks(key, plaintext, SMALL)
    assert seal.unseal_chunks(key, sealed, SMALL) == plaintext
    # every chunk full but the last, which holds the rest: never empty unless the whole stream is
    count = max(1, -(-size // SMALL))
    assert len(sealed) == size + count * seal.CHUNK_OVERHEAD
    assert len(_chunks(sealed)) == count


def test_a_stream_fed_in_any_pieces_is_the_same_stream() -> None:
    key, plaintext = seal.new_key(), b"0123456789abcdefghij" * 7
    sealer = seal.ChunkSealer(key, SMALL)
    sealed = b"".join(sealer.feed(plaintext[i : i + n]) for i, n in ((0, 3), (3, 40), (43, 0), (43, 97)))
    sealed += sealer.end()
    assert seal.unseal_chunks(key, sealed, SMALL) == plaintext
    assert len(_chunks(sealed)) == -(-len(plaintext) // SMALL)


@pytest.mark.parametrize("size", [0, 2 * seal.CHUNK_BYTES, 2 * seal.CHUNK_BYTES + 1])
def test_the_real_chunk_size_empty_and_an_exact_multiple(size: int) -> None:
    key = seal.new_key()
    plaintext = b"\xa5" * size
    sealed = seal.seal_chunks(key, plaintext)
    assert seal.unseal_chunks(key, sealed) == plaintext
    chunks = _chunks(sealed, seal.CHUNK_BYTES)
    assert len(chunks) == max(1, -(-size // seal.CHUNK_BYTES))
    last = size - (len(chunks) - 1) * seal.CHUNK_BYTES  # a full last chunk for an exact multiple
    assert len(chunks[-1]) == last + seal.CHUNK_OVERHEAD
    assert seal.CHUNK_BYTES == 1024 * 1024
    assert seal.CHUNK_OVERHEAD == 12 + 16


def _broken(key: bytes, sealed: bytes, chunk_bytes: int = SMALL) -> None:
    with pytest.raises(seal.SealBroken):
        seal.unseal_chunks(key, sealed, chunk_bytes)


def test_chunks_reordered_dropped_cut_off_added_or_changed_do_not_open() -> None:
    key = seal.new_key()
    sealed = seal.seal_chunks(key, b"x" * (4 * SMALL + 5), SMALL)
    chunks = _chunks(sealed)
    assert len(chunks) == 5
    _broken(key, b"".join([chunks[1], chunks[0], *chunks[2:]]))  # reordered
    _broken(key, b"".join([chunks[0], *chunks[2:]]))  # one dropped
    _broken(key, b"".join(chunks[:-1]))  # the last dropped: the object truncated at a chunk's end
    _broken(key, sealed[:-1])  # truncated within a chunk
    _broken(key, sealed + chunks[-1])  # a chunk added after the last
    _broken(key, b"")  # nothing at all
    changed = bytearray(sealed)
    changed[SMALL + 40] ^= 1
    _broken(key, bytes(changed))
    _broken(seal.new_key(), sealed)  # another key
    # a full last chunk is the last: the same stream cut off one chunk earlier does not open either
    whole = seal.seal_chunks(key, b"y" * (3 * SMALL), SMALL)
    _broken(key, b"".join(_chunks(whole)[:2]))


def test_the_key_is_derived_per_conversation_session_and_object() -> None:
    key, sid = seal.new_key(), str(uuid.uuid4())
    name = exports.key_for(sid, str(uuid.uuid4()), "json")
    derived = seal.export_key(key, sid, name)
    assert len(derived) == 32
    assert derived == seal.export_key(key, sid, name)  # the conversation's key derives it again ...
    others = {
        seal.export_key(key, sid, exports.key_for(sid, str(uuid.uuid4()), "json")),  # another object
        seal.export_key(key, sid, name.replace(".json", ".md")),  # another name
        seal.export_key(key, str(uuid.uuid4()), name),  # another session
        seal.export_key(seal.new_key(), sid, name),  # another conversation's key
    }
    assert derived not in others
    assert len(others) == 4
    assert derived != key


def test_a_chunk_of_another_object_or_a_copy_under_another_name_does_not_open() -> None:
    key, sid = seal.new_key(), str(uuid.uuid4())
    first, second = (exports.key_for(sid, str(uuid.uuid4()), "json") for _ in range(2))
    one = seal.seal_chunks(seal.export_key(key, sid, first), b"a" * (3 * SMALL), SMALL)
    two = seal.seal_chunks(seal.export_key(key, sid, second), b"a" * (3 * SMALL), SMALL)
    a, b = _chunks(one), _chunks(two)
    _broken(seal.export_key(key, sid, first), b"".join([a[0], b[1], a[2]]))  # a chunk swapped in
    _broken(seal.export_key(key, sid, second), one)  # the object copied under another name
    other_session = str(uuid.uuid4())
    _broken(seal.export_key(key, other_session, first.replace(sid, other_session)), one)
