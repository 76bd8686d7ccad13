"""PynamoDB models of the items in the sessions table (key layout in keys.py)."""

from __future__ import annotations

import os
from typing import Any

from pynamodb.attributes import (
    DiscriminatorAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chatvault import deadline
from chatvault.dal.clients import SDK_ATTEMPTS
from chatvault.dal.keys import ERASING_INDEX, OWNER_INDEX
from chatvault.settings import get_settings


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
    preview = UnicodeAttribute(null=True)
    expires_at = TTLAttribute()
    last_position = UnicodeAttribute(null=True)
    uploads_issued = NumberAttribute(default=0)
    deleted_at = UTCDateTimeAttribute(null=True)
    erased_messages = NumberAttribute(null=True)
    erasing = UnicodeAttribute(null=True)
    # AppendRateLimit: the theoretical arrival time of the next append, in microseconds (dal/pace.py)
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

    by_owner = OwnerIndex()


class StoredKey(Model):
    """Any item of the sessions table, by its keys alone: what an erase deletes. Not discriminated,
    so its queries see every item of a partition whatever it is (PynamoDB filters a discriminated
    model's queries to the kinds it knows)."""

    class Meta(TableMeta):
        table_name = TableName("table_name")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


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
    Its TTL runs a little past the session's (dal/sessions.py, profile_expiry)."""

    title = UnicodeAttribute(null=True)
    metadata: MapAttribute[str, Any] = MapAttribute(default=dict)
    expires_at = TTLAttribute()


class MessageItem(ChatItem, discriminator="message"):
    """`sk = M#<position>`: a message, in the order its append was accepted."""

    message_id = UnicodeAttribute()
    role = UnicodeAttribute()
    content = UnicodeAttribute()
    meta = UnicodeAttribute(null=True)  # the typed metadata, as compact JSON
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class MessageIdItem(ChatItem, discriminator="message_id"):
    """`sk = !I#<message_id>`: a client message id already used, its message and body hash."""

    position = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expires_at = TTLAttribute()


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
