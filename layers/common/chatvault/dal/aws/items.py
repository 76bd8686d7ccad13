"""PynamoDB models of the items in the sessions table (key layout in keys.py), and how what a person
wrote is sealed in them.

## Sealed fields (crypto-shredding: seal.py, dal/conversation_keys.py)

A session created since conversations have keys is *keyed*: its session item carries `key_id` (S, the
name of its key: conversation_keys.key_id) and `key_expires_at` (N, epoch seconds: when its key's TTL
falls, never after the session's own `expires_at`), and everything a person wrote is stored sealed
under the session's key, each value bound to its session, item and field:

    item        attribute        plaintext sealed                       associated data
    #S session  sealed_preview   the preview (UTF-8)                    place(pk, "#S", "sealed_preview")
    !P profile  sealed_title     the title (UTF-8)                      place(pk, "!P", "sealed_title")
    !P profile  sealed_metadata  the metadata: compact JSON object      place(pk, "!P", "sealed_metadata")
    M# message  sealed           metadata JSON, b"\n", content (UTF-8)  place(pk, sk, "sealed")

(seal.place(session_id, sort_key, field); each value is seal.seal's `0x01 | nonce | ciphertext | tag`,
a DynamoDB binary.) A message's plaintext is its metadata as compact JSON (empty when it has none;
compact JSON never holds a raw newline), one newline byte, then its content as it was written: the
content is not JSON-escaped, so the largest message still fits an item (tests/integration/
test_worst_case.py). An absent field is absent (no title, no metadata, no preview yet).

A keyed item never holds the plaintext attributes. Items written before keys existed (*legacy*: the
session item has no `key_id`) hold them as they were: `preview` (S), `title` (S) and `metadata` (M),
`content` (S) and `meta` (S, compact JSON); they stay readable, and new writes to a legacy session
stay plaintext (it has no key to write under). Sealing a legacy session in place (an operator's
migration): write its key item and set `key_id`/`key_expires_at` on its session item in one
transaction, then replace each item's plaintext attributes by their sealed ones (each item in one
write, conditioned on the plaintext still being there, so running twice changes nothing). Readers
take a sealed attribute when present, else the plaintext one, so a half-migrated session reads whole.
Ids, roles, times, counters and upload declarations stay plaintext: they are not what a person wrote.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chatvault.core import deadline, seal
from chatvault.core.settings import get_settings
from chatvault.dal.aws.clients import SDK_ATTEMPTS
from chatvault.dal.aws.keys import ERASING_INDEX, OWNER_INDEX, SHARE_INDEX


class OwnerIndex(GlobalSecondaryIndex["SessionItem"]):
    """Sparse: only sessions created in jwt mode carry `owner_key`. Newest activity first."""

    class Meta:
        index_name = OWNER_INDEX
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    activity_at = UnicodeAttribute(range_key=True)


class ErasingIndex(GlobalSecondaryIndex["ErasingMark"]):
    """Sparse: only sessions whose delete has begun carry `erasing`; the sweep finishes stale ones."""

    class Meta:
        index_name = ERASING_INDEX
        projection = KeysOnlyProjection()

    erasing = UnicodeAttribute(hash_key=True)
    deleted_at = UTCDateTimeAttribute(range_key=True)


class ShareIndex(GlobalSecondaryIndex["ShareKey"]):
    """Sparse: only share links carry `share_id`. Keys only: the read then fetches the link itself,
    strongly consistent, so a revoked link is refused at once whatever the index still shows."""

    class Meta:
        index_name = SHARE_INDEX
        projection = KeysOnlyProjection()

    share_id = UnicodeAttribute(hash_key=True)


class TableName:
    """A model's table name, read from the settings when PynamoDB first asks for it rather than at
    import: tools that import the handlers (the OpenAPI generator) need no environment."""

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __get__(self, instance: object, owner: type | None = None) -> str:
        return str(getattr(get_settings(), self.setting))


class TableMeta:
    """What every PynamoDB model of the service shares; each adds its `table_name`."""

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    max_retry_attempts = SDK_ATTEMPTS - 1  # PynamoDB counts the retries after the first attempt
    connect_timeout_seconds = deadline.CONNECT_TIMEOUT_S
    read_timeout_seconds = deadline.READ_TIMEOUT_S
    max_pool_connections = 32


class ChatItem(Model):
    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class SessionItem(ChatItem, discriminator="session"):
    """`sk = #S`: the session's small, often written part: who owns it, its state, its counters. Each
    append rewrites it, so it stays well under 1 KB (one write unit, two in a transaction); the
    title and metadata live in the profile."""

    token_hash = UnicodeAttribute(null=True)
    owner_id = UnicodeAttribute(null=True)
    owner_key = UnicodeAttribute(null=True)
    activity_at = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="active")
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    last_message_at = UTCDateTimeAttribute(null=True)
    message_count = NumberAttribute(default=0)
    preview = UnicodeAttribute(null=True)  # legacy sessions only
    sealed_preview = BinaryAttribute(null=True, legacy_encoding=False)
    expires_at = TTLAttribute()
    last_position = UnicodeAttribute(null=True)
    uploads_issued = NumberAttribute(default=0)
    deleted_at = UTCDateTimeAttribute(null=True)
    erased_messages = NumberAttribute(null=True)
    erasing = UnicodeAttribute(null=True)
    # AppendRateLimit: the theoretical arrival time of the next append, in microseconds (logic/rules/pace.py)
    append_tat = NumberAttribute(null=True)
    # When the profile's TTL falls (epoch seconds): an append that would let the session outlive its
    # profile refreshes the profile too (dal/messages.py)
    profile_expires_at = NumberAttribute(null=True)
    # One reply at a time (dal/messages.py ReplyLock): the token of the chat making a reply, and when
    # its guard lapses (epoch milliseconds: the end of that function's invocation)
    reply_lock = UnicodeAttribute(null=True)
    reply_until = NumberAttribute(null=True)
    # Stop (POST .../chat/stop): the token of the reply the person stopped; the streaming reply sees it
    reply_stopped = UnicodeAttribute(null=True)
    # The conversation's key (module docstring): its name, and when its TTL falls (epoch seconds). An
    # append that would let the session outlive its key moves the key's TTL too (dal/messages.py).
    key_id = UnicodeAttribute(null=True)
    key_expires_at = NumberAttribute(null=True)
    # A temporary conversation (never listed, never claimed: it has no `owner_key`) and the session's own
    # retention in hours, when it has one (a temporary one's; absent: the deployment's RetentionHours).
    # Writers that slide the expiry condition on it (dal/messages.py, sessions.update).
    temporary = BooleanAttribute(null=True)
    retention_hours = NumberAttribute(null=True)
    # share links made of it (POST .../shares): counted by the write that makes one, conditioned on it
    shares_issued = NumberAttribute(null=True)

    by_owner = OwnerIndex()


class StoredKey(Model):
    """Any item of the sessions table, by its keys alone: what an erase deletes. Not discriminated,
    so its queries see every item of a partition whatever it is (PynamoDB filters a discriminated
    model's queries to the kinds it knows)."""

    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # the session item's mark, as an erase's Query of the partition reads it beside the keys
    deleted_at = UTCDateTimeAttribute(null=True)
    erased_messages = NumberAttribute(null=True)


class ErasingMark(Model):
    """A session item whose delete has begun, as the keys-only `by_erasing` index projects it. Its own
    model, without the discriminator: PynamoDB filters a discriminated model's queries on `kind`,
    which a keys-only projection does not carry."""

    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    erasing = UnicodeAttribute()
    deleted_at = UTCDateTimeAttribute()

    by_erasing = ErasingIndex()


class ProfileItem(ChatItem, discriminator="profile"):
    """`sk = !P`: the session's title and metadata (up to ~37 KB), written by create and PATCH only.
    Its TTL runs a little past the session's (dal/session_items.py, profile_expiry)."""

    title = UnicodeAttribute(null=True)  # legacy sessions only
    metadata: MapAttribute[str, Any] = MapAttribute(null=True)  # legacy sessions only
    sealed_title = BinaryAttribute(null=True, legacy_encoding=False)
    sealed_metadata = BinaryAttribute(null=True, legacy_encoding=False)
    expires_at = TTLAttribute()


class MessageItem(ChatItem, discriminator="message"):
    """`sk = M#<position>`: a message, in the order its append was accepted."""

    message_id = UnicodeAttribute()
    role = UnicodeAttribute()
    content = UnicodeAttribute(null=True)  # legacy sessions only
    meta = UnicodeAttribute(null=True)  # the typed metadata, as compact JSON (legacy sessions only)
    sealed = BinaryAttribute(null=True, legacy_encoding=False)  # metadata and content
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()
    # a person's feedback on a reply (PUT .../feedback, dal/feedback.py): rating, comment and time as
    # compact JSON, sealed like the content (plaintext in a legacy session's message)
    feedback = UnicodeAttribute(null=True)  # legacy sessions only
    sealed_feedback = BinaryAttribute(null=True, legacy_encoding=False)


class MessageIdItem(ChatItem, discriminator="message_id"):
    """`sk = !I#<message_id>`: a client message id already used, its message and body hash."""

    position = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expires_at = TTLAttribute()


class ShareItem(ChatItem, discriminator="share"):
    """`sk = !H#<share_id>`: a share link (dal/shares.py). A snapshot by reference: the position of the
    newest message when it was made (`upto`) and how many the session held, never a copy of them."""

    share_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()
    # epoch seconds: created_at + ShareHours, the latest a longer retention may move expires_at to
    limit_at = NumberAttribute()
    upto = UnicodeAttribute(null=True)  # None: the session held no message yet
    message_count = NumberAttribute()


class ShareKey(Model):
    """A share link as the keys-only `by_share` index projects it (not discriminated, like ErasingMark)."""

    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    share_id = UnicodeAttribute()

    by_share = ShareIndex()


class UploadItem(ChatItem, discriminator="upload"):
    """`sk = U#<upload_id>`: an upload as it was declared (type, largest size) and whether its object
    has reached the bucket (`pending`, then `stored` with the object's real size). Written with the
    presigned POST's issue, confirmed by the bucket's ObjectCreated event (logic/confirm_upload.py).
    No file name: it is checked at the request and never stored."""

    content_type = UnicodeAttribute()
    size = NumberAttribute()
    status = UnicodeAttribute(default="pending")
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


# ---- the sealed fields (module docstring) ------------------------------------------------------------

SEALED_PREVIEW = "sealed_preview"
SEALED_TITLE = "sealed_title"
SEALED_METADATA = "sealed_metadata"
SEALED_MESSAGE = "sealed"
SEALED_FEEDBACK = "sealed_feedback"


def compact_json(value: object) -> str:
    """UTF-8 JSON, not ASCII escapes: an astral character costs 4 bytes of the item, not 12."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def seal_text(key: bytes, session_id: str, sort_key: str, field: str, text: str) -> bytes:
    return seal.seal(key, seal.place(session_id, sort_key, field), text.encode("utf-8"))


def open_text(key: bytes, session_id: str, sort_key: str, field: str, sealed: bytes) -> str:
    """The text; seal.SealBroken when it does not open under this key in this place."""
    return seal.unseal(key, seal.place(session_id, sort_key, field), sealed).decode("utf-8")


def seal_message(key: bytes, session_id: str, sort_key: str, content: str, metadata: dict[str, Any]) -> bytes:
    plain = (compact_json(metadata) if metadata else "") + "\n" + content
    return seal.seal(key, seal.place(session_id, sort_key, SEALED_MESSAGE), plain.encode("utf-8"))


def open_message(key: bytes, session_id: str, sort_key: str, sealed: bytes) -> tuple[str, dict[str, Any]]:
    """(content, metadata); seal.SealBroken when it does not open under this key in this place."""
    plain = seal.unseal(key, seal.place(session_id, sort_key, SEALED_MESSAGE), sealed)
    meta, _, content = plain.partition(b"\n")
    return content.decode("utf-8"), json.loads(meta) if meta else {}
