"""Erased means erased in backups too (issue 23), through HTTP on the local stack (`make dev`): what a
person wrote is stored only sealed under its conversation's own key, and once the panic button has
destroyed that key, a copy of the conversation (a backup, a point-in-time restore) opens under no key
the deployment still holds. An export too large for one answer is sealed too, under a key only its
answer carries, derived from the conversation's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import time
import uuid
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from chatvault_client import ChatVault, TransportError

from chatvault.core import seal
from chatvault.dal import conversation_keys
from tests.helpers import BUCKET, partition
from tests.integration.local_stack import LocalStack, fill_past_inline, table_items

pytestmark = pytest.mark.http
TIMEOUT = 30
SESSIONS = "chatvault-local-SessionsTable"
KEYS = "chatvault-local-KeysTable"
SECRET = "chatvault-local-FingerprintSecret"
LOCAL = Credentials("testing", "testing")  # what the local gateway's SigV4 check accepts
# the fields a sealed value may sit in, as dal/aws/items.py lays them out
SEALED_FIELDS = ("sealed", "sealed_preview", "sealed_title", "sealed_metadata")


def _ddb(stack: LocalStack) -> Any:
    return stack.client("dynamodb")


def _service_append(stack: LocalStack, session_id: str, body: dict[str, Any]) -> requests.Response:
    """The bot's side: an append signed with SigV4 (the service writer's route)."""
    url = f"{stack.api}/api/v1/service/sessions/{session_id}/messages"
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(LOCAL, "execute-api", "us-east-1").add_auth(request)
    return requests.post(url, data=data, headers=dict(request.headers.items()), timeout=TIMEOUT)


def _conversation(stack: LocalStack, marker: str) -> tuple[str, str, dict[str, str]]:
    """A session with a title, metadata and messages carrying `marker`: a user append, the service
    writer's assistant append, a chat exchange, and a PATCH of its title and metadata."""
    created = requests.post(
        f"{stack.api}/api/v1/sessions",
        json={"title": f"title {marker}", "metadata": {"topic": f"topic {marker}"}},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    sid, auth = created.json()["session_id"], {"X-Session-Token": created.json()["session_token"]}
    url = f"{stack.api}/api/v1/sessions/{sid}"
    user = requests.post(
        f"{url}/messages",
        headers=auth,
        json={
            "role": "user",
            "content": f"user words {marker}",
            "message_id": str(uuid.uuid4()),
            "metadata": {"attributes": {"note": f"meta {marker}"}},
        },
        timeout=TIMEOUT,
    )
    assert user.status_code == 201, user.text
    bot = _service_append(
        stack, sid, {"role": "assistant", "content": f"bot words {marker}", "metadata": {"model": marker}}
    )
    assert bot.status_code == 201, bot.text
    chat = requests.post(
        f"{url}/chat", headers=auth, json={"content": f"chat words {marker}"}, timeout=TIMEOUT
    )
    assert chat.status_code == 201, chat.text
    assert marker in chat.json()["reply"]["content"]  # the stand-in quotes it: the reply holds it too
    patched = requests.patch(
        url, headers=auth, json={"title": f"renamed {marker}", "metadata": {"k": marker}}, timeout=TIMEOUT
    )
    assert patched.status_code == 200, patched.text
    return sid, url, auth


def _held_keys(stack: LocalStack) -> dict[str, bytes]:
    """Every key the deployment still holds, unwrapped as the service unwraps them: the keys table's
    items, under the key derived from the deployment's secret (dal/secret.py wrapping_key)."""
    secrets = stack.client("secretsmanager")
    master = secrets.get_secret_value(SecretId=SECRET)["SecretString"].encode()
    wrapping = hmac.new(master, b"conversation-key-wrap:v1", hashlib.sha256).digest()
    held = {}
    for item in _ddb(stack).scan(TableName=KEYS, ConsistentRead=True)["Items"]:
        session_id = item["pk"]["S"]
        held[session_id] = seal.unseal(
            wrapping, seal.place(session_id, "key", "data_key"), item["wrapped"]["B"]
        )
    return held


def _deploy(stack: LocalStack) -> None:
    """As a deployment: every function of the stack starts cold (infra/local/dev.py, SIGHUP)."""
    os.kill(json.loads(stack.state.read_text())["pid"], signal.SIGHUP)
    time.sleep(0.5)


def _sealed_values(items: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(associated data, sealed value) of every sealed field of these items."""
    return [
        (seal.place(item["pk"]["S"], item["sk"]["S"], name), item[name]["B"])
        for item in items
        for name in SEALED_FIELDS
        if name in item
    ]


def test_no_item_of_any_table_holds_what_a_person_wrote(stack: LocalStack) -> None:
    marker = f"plaintext-{uuid.uuid4().hex[:12]}"
    sid, url, auth = _conversation(stack, marker)
    # the service reads it all back
    session = requests.get(url, headers=auth, timeout=TIMEOUT).json()
    assert session["title"] == f"renamed {marker}"
    assert session["metadata"] == {"k": marker}
    assert marker in session["preview"]
    history = requests.get(f"{url}/messages", headers=auth, timeout=TIMEOUT).json()["items"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0]["metadata"]["attributes"] == {"note": f"meta {marker}"}
    assert history[1]["metadata"]["model"] == marker

    items = table_items(stack)  # every item of every table: sessions, audit, limits, keys
    ours = [i for i in items if i.get("pk", {}).get("S") == sid and "sk" in i]
    assert {i["sk"]["S"][:2] for i in ours} >= {"#S", "!P", "M#", "!I"}
    encoded = marker.encode()
    for item in items:
        for name, value in item.items():
            ((_, raw),) = value.items()
            assert encoded not in (raw if isinstance(raw, bytes) else json.dumps(raw).encode()), (name, item)
    assert len(_sealed_values(ours)) == 4 + 3  # four messages; the preview, the title, the metadata


def test_a_restored_copy_of_an_erased_conversation_opens_under_no_key_and_is_not_served(
    stack: LocalStack,
) -> None:
    marker = f"backup-{uuid.uuid4().hex[:12]}"
    _conversation(stack, f"bystander-{marker}")  # a key the deployment still holds, to try on the copies
    sid, url, auth = _conversation(stack, marker)
    ddb = _ddb(stack)
    # 1. a backup: every raw item of the session, and its export
    backup = partition(sid, SESSIONS, ddb)
    exported = requests.get(f"{url}/export", headers=auth, timeout=TIMEOUT)
    assert exported.status_code == 200, exported.text
    assert marker in exported.text
    sealed = _sealed_values(backup)
    assert len(sealed) == 7
    key = _held_keys(stack)[sid]  # while the conversation lives, its copies open under its key
    assert all(marker.encode() in seal.unseal(key, where, value) for where, value in sealed)

    # 2. the panic button
    assert requests.delete(url, headers=auth, timeout=TIMEOUT).status_code == 200
    # 3. the restore: the copies put back. (A real restore writes a new table, which the stack is then
    # deployed to read: every function starts cold. A copy put back into the live table within minutes
    # of its erase could still be served by a function that holds its key in memory, for at most
    # conversation_keys.CACHE_SECONDS: the deployment is part of the restore.)
    for item in backup:
        ddb.put_item(TableName=SESSIONS, Item=item)
    _deploy(stack)

    # 4. the service answers 404 for it, whatever it is asked
    for path in ("", "/messages", "/export"):
        answer = requests.get(f"{url}{path}", headers=auth, timeout=TIMEOUT)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "session_not_found"
    appended = requests.post(
        f"{url}/messages", headers=auth, json={"role": "user", "content": "x"}, timeout=30
    )
    assert appended.status_code == 404
    # and no key the deployment still holds opens any of the copies
    held = _held_keys(stack)
    assert sid not in held
    assert held  # other conversations' keys are there, and tried
    for where, value in sealed:
        for other in held.values():
            with pytest.raises(seal.SealBroken):
                seal.unseal(other, where, value)
    conversation_keys.forget()


def _history(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = requests.get(f"{url}/messages", headers=auth, params=params, timeout=TIMEOUT).json()
        messages += page["items"]
        if not page["next_cursor"]:
            return messages
        params = {"limit": 100, "cursor": page["next_cursor"]}


def test_a_large_export_is_sealed_under_a_key_only_its_answer_carries_and_erased_with_it(
    stack: LocalStack,
) -> None:
    """An export past one response is a link to an object sealed in chunks under a key derived from
    the conversation's: the bucket holds nothing a person wrote, the answer alone carries the key, the
    Python client opens it to the export, and the panic button leaves neither the object nor anything
    to derive its key from."""
    marker = f"export-{uuid.uuid4().hex[:12]}"
    s3 = stack.client("s3")
    browser = ChatVault(stack.api)
    created = browser.create_session(title=f"title {marker}")
    assert created.session_token
    sid, user = created.session_id, browser.with_token(created.session_token)
    url, auth = f"{stack.api}/api/v1/sessions/{sid}", {"X-Session-Token": created.session_token}
    fill_past_inline(stack.api, sid, created.session_token, f"{marker} ")

    exported = requests.get(f"{url}/export", headers=auth, timeout=60)

    assert exported.status_code == 200, exported.text
    assert exported.headers["cache-control"] == "no-store"  # the answer carries the object's key
    link = exported.json()
    assert set(link) == {"download_url", "expires_at", "encryption"}
    encryption = link["encryption"]
    assert {k: v for k, v in encryption.items() if k != "key"} == {
        "algorithm": "AES-256-GCM",
        "chunk_bytes": 1024 * 1024,
        "format": "chatvault.export.sealed/1",
    }
    key = base64.urlsafe_b64decode(encryption["key"] + "=" * (-len(encryption["key"]) % 4))
    assert len(key) == 32
    # the bucket holds it sealed: nothing of what the person wrote, whether read there or by the link
    (stored,) = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/")["Contents"]
    name = stored["Key"]
    raw = s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    assert requests.get(link["download_url"], timeout=60).content == raw
    for text in (marker, "x" * 64, f"title {marker}", '"messages"'):
        assert text.encode() not in raw, text
    assert len(raw) > 5 * (1024 * 1024 + seal.CHUNK_OVERHEAD)  # six chunks
    # its key is derived from the conversation's, which only the keys table holds (wrapped)
    assert key == seal.export_key(_held_keys(stack)[sid], sid, name)
    assert encryption["key"].encode() not in json.dumps(table_items(stack), default=repr).encode()
    # the Python client opens it to the export, as the inline form carries one
    opened = user.open_export(link)
    assert opened == {
        "format": "chatvault.export/1",
        "exported_at": opened["exported_at"],
        "session": requests.get(url, headers=auth, timeout=TIMEOUT).json(),
        "messages": _history(url, auth),
        "uploads": [],
    }
    assert len(opened["messages"]) == 165
    followed = user.export(sid)  # export() follows a link itself
    assert {**followed, "exported_at": None} == {**opened, "exported_at": None}
    assert len(s3.list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/")["Contents"]) == 2

    assert requests.delete(url, headers=auth, timeout=60).status_code == 200  # the panic button

    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"exports/{sid}/")
    with pytest.raises(TransportError):
        user.open_export(link)
    held = _held_keys(stack)
    assert sid not in held  # nothing left to derive the object's key from ...
    for other in held.values():  # ... and no key the deployment holds derives one that opens a copy
        with pytest.raises(seal.SealBroken):
            seal.unseal_chunks(seal.export_key(other, sid, name), raw)
    conversation_keys.forget()
