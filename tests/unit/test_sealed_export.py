"""The export object is sealed (seal.py, `chatvault.export.sealed/1`): its plaintext in chunks, each
sealed at its place in the stream under a key of the object's own, derived from its conversation's
key and its name. Only the answer that links to it carries that key; the bucket holds nothing a
person wrote, and a copy of the object, or of a chunk, opens nowhere else."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import pytest

from chatvault.core import clock, seal
from chatvault.core.settings import get_settings
from chatvault.dal import audit, conversation_keys, exports
from tests.helpers import BUCKET, call, create, s3

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


# ---- the export's object, through the handler ----------------------------------------------------

MARKER = "marker-7c1e-what-a-person-wrote"


def _exported(sid: str, token: str, query: str = "") -> Any:
    reply = call("GET", f"/api/v1/sessions/{sid}/export", token=token, query=query)
    assert reply.status == 200, reply.body
    return reply


def _object(sid: str) -> tuple[str, bytes]:
    (stored,) = s3().list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/")["Contents"]
    got = s3().get_object(Bucket=BUCKET, Key=stored["Key"])
    assert got["ContentType"] == "application/octet-stream"
    return stored["Key"], got["Body"].read()


def _key_of(link: dict[str, Any]) -> bytes:
    text = link["encryption"]["key"]
    assert "=" not in text  # base64url without padding
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def session() -> tuple[str, str]:
    s = create(body={"title": f"title {MARKER}"}).body
    for n in range(40):
        reply = call(
            "POST",
            f"/api/v1/sessions/{s['session_id']}/messages",
            token=s["session_token"],
            body={"role": "user", "content": f"{MARKER} {n} " + "ü" * 300},
        )
        assert reply.status == 201, reply.body
    return s["session_id"], s["session_token"]


@pytest.mark.usefixtures("aws")
def test_the_object_holds_nothing_a_person_wrote_and_opens_to_the_inline_export(
    session: tuple[str, str], settings_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid, token = session
    inline = _exported(sid, token).body
    assert inline["session"]["title"] == f"title {MARKER}"
    monkeypatch.setattr(seal, "CHUNK_BYTES", 4096)  # several chunks for a small export
    settings_env.setenv("EXPORT_INLINE_BYTES", "1")
    get_settings.cache_clear()

    reply = _exported(sid, token)

    assert reply.headers["Cache-Control"] == "no-store"
    link = reply.body
    assert link["encryption"] == {
        "algorithm": "AES-256-GCM",
        "key": link["encryption"]["key"],
        "chunk_bytes": 4096,
        "format": "chatvault.export.sealed/1",
    }
    name, stored = _object(sid)
    assert name in link["download_url"]
    assert name.endswith(".json")
    for text in (MARKER, "ü" * 10, "title"):
        assert text.encode() not in stored
        assert json.dumps(text).encode() not in stored
    assert len(_chunks(stored, 4096)) > 5
    # the answer's key is the object's, derived from the conversation's key and the object's name
    conversation_keys.forget()
    held = conversation_keys.read(sid, clock.now())
    assert held is not None
    assert _key_of(link) == seal.export_key(held, sid, name)
    opened = json.loads(seal.unseal_chunks(_key_of(link), stored, 4096))
    assert {**opened, "exported_at": None} == {**inline, "exported_at": None}
    # the key is nowhere but in the answer: not in the audit trail, the object's metadata or a table
    assert link["encryption"]["key"] not in json.dumps([e.model_dump(mode="json") for e in audit.trail(sid)])
    head = s3().head_object(Bucket=BUCKET, Key=name)
    assert link["encryption"]["key"] not in json.dumps(head, default=str)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for table in ddb.list_tables()["TableNames"]:
        scanned = json.dumps(ddb.scan(TableName=table)["Items"], default=repr)
        assert link["encryption"]["key"] not in scanned
        assert repr(_key_of(link)) not in scanned


@pytest.mark.usefixtures("aws")
def test_each_export_has_its_own_key_and_after_the_panic_button_none_can_be_derived(
    session: tuple[str, str], settings_env: pytest.MonkeyPatch
) -> None:
    sid, token = session
    settings_env.setenv("EXPORT_INLINE_BYTES", "1")
    get_settings.cache_clear()
    links = [_exported(sid, token).body, _exported(sid, token, "format=markdown").body]
    names = sorted(
        o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/")["Contents"]
    )
    assert len(names) == 2
    assert _key_of(links[0]) != _key_of(links[1])
    by_name = {n: s3().get_object(Bucket=BUCKET, Key=n)["Body"].read() for n in names}
    markdown = next(n for n in names if n.endswith(".md"))
    transcript = seal.unseal_chunks(_key_of(links[1]), by_name[markdown]).decode()
    assert transcript.startswith(f"# title {MARKER}\n")
    with pytest.raises(seal.SealBroken):  # one export's key opens no other
        seal.unseal_chunks(_key_of(links[0]), by_name[markdown])

    assert call("DELETE", f"/api/v1/sessions/{sid}", token=token).status == 200

    assert not s3().list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/").get("Contents")
    conversation_keys.forget()
    assert conversation_keys.read(sid, clock.now()) is None  # nothing left to derive the keys from


@pytest.mark.usefixtures("aws")
def test_a_legacy_sessions_object_is_sealed_too_under_a_key_nothing_stored_derives(
    settings_env: pytest.MonkeyPatch,
) -> None:
    from chatvault.dal.aws.items import SessionItem

    s = create().body
    sid, token = s["session_id"], s["session_token"]
    SessionItem(sid, "#S").update(actions=[SessionItem.key_id.remove(), SessionItem.key_expires_at.remove()])
    conversation_keys.KeyItem(sid).delete()
    conversation_keys.forget()
    reply = call(
        "POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": MARKER}
    )
    assert reply.status == 201, reply.body
    inline = _exported(sid, token).body
    settings_env.setenv("EXPORT_INLINE_BYTES", "1")
    get_settings.cache_clear()

    link = _exported(sid, token).body

    _name, stored = _object(sid)
    assert MARKER.encode() not in stored
    opened = json.loads(seal.unseal_chunks(_key_of(link), stored))
    assert {**opened, "exported_at": None} == {**inline, "exported_at": None}
    assert conversation_keys.read(sid, clock.now()) is None  # no key of the session derives it


def test_the_contracts_snippet_opens_an_object_as_the_service_seals_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/API.md's way to open a link by hand, run as written against objects seal.py writes."""
    import re
    from pathlib import Path

    import requests

    doc = (Path(__file__).resolve().parents[2] / "docs/API.md").read_text()
    section = doc.split("The sealed export object, `chatvault.export.sealed/1`")[1]
    (snippet,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    objects: dict[str, bytes] = {}

    class Got:
        def __init__(self, url: str) -> None:
            self.content = objects[url.split("?", maxsplit=1)[0]]

    monkeypatch.setattr(requests, "get", lambda url, timeout: Got(url))

    def link(plaintext: bytes, name: str) -> dict[str, Any]:
        key = seal.new_key()
        objects[f"https://bucket.example/{name}"] = seal.seal_chunks(key, plaintext)
        encoded = base64.urlsafe_b64encode(key).decode().rstrip("=")
        return {
            "download_url": f"https://bucket.example/{name}?X-Amz-Expires=900",
            "encryption": {"algorithm": "AES-256-GCM", "key": encoded, "chunk_bytes": seal.CHUNK_BYTES},
        }

    document = {"format": "chatvault.export/1", "messages": [{"content": "ü" * seal.CHUNK_BYTES}]}
    encoded_document = json.dumps(document).encode()
    assert namespace["open_export"](link(encoded_document, "exports/s/a.json")) == document
    exact = b"#" * (2 * seal.CHUNK_BYTES)
    assert namespace["open_export"](link(exact, "exports/s/b.md")) == exact.decode()
    assert namespace["open_export"](link(b"", "exports/s/c.md")) == ""
