"""What sealing legacy sessions in place reads and writes (logic/seal_legacy.py, `make admin
ARGS="seal-legacy"`; the design is dal/aws/items.py's, "Sealing a legacy session in place").

- `survey`: one strongly consistent Scan of the sessions table, page by page (1 MB a request), that
  returns only session items and items still holding plaintext, and of them only their keys, their
  state and a session item's preview (to tell whether it is there): never a message or a profile.
- `give_key` (step 1): one TransactWriteItems: the session's key item (conversation_keys.new, its TTL
  the session's expiry, as the create writes it) and `key_id`/`key_expires_at` on its session item,
  on condition that the session item still exists, still has no key, is not being erased, and still
  expires when it was read (an append or a PATCH in between moves its expiry: the key's TTL must be
  the new one). Refused, it answers the session item as it is now (ALL_OLD): no read to learn why.
- `plaintext` (step 2's read): the partition's items still holding plaintext, by a strongly
  consistent Query filtered to them, a page (1 MB) at a time.
- `seal_item` (step 2): one UpdateItem an item, that SETs its sealed attributes and REMOVEs the
  plaintext ones, on condition that the plaintext is still what was read and the sealed attribute is
  still absent (a writer that sealed it meanwhile, or a second run, wins; a deleted item is never
  written back). Refused, the item as it is now comes back with the refusal (ALL_OLD) and the next
  attempt works from that.

Sealed values are the service's own (dal/aws/items.py: seal_text, seal_message, place), made from the
plaintext as the service's readers decode it (a profile through ProfileItem and `plain_map`, a message
through history.plaintext_of), so a sealed item reads back exactly as its plaintext did.

Round trips: the Scan's pages; per legacy session one TransactWriteItems, one Query per page of its
plaintext items and one UpdateItem per item (one more per refusal); per session keyed by an earlier,
interrupted run one GetItem of its session item (when the Scan did not return it) and one of its key.
The Scan and the UpdateItems cost their items' size, as any write of them would; a sealed item is
29 bytes larger per sealed value (seal.OVERHEAD) than its plaintext. Updating an item raises no
message event: the stream's filter passes new message items only (INSERT)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chatvault.dal import conversation_keys, history
from chatvault.dal.aws import connection
from chatvault.dal.aws.items import (
    SEALED_FEEDBACK,
    SEALED_MESSAGE,
    SEALED_METADATA,
    SEALED_PREVIEW,
    SEALED_TITLE,
    ChatItem,
    MessageItem,
    ProfileItem,
    SessionItem,
    compact_json,
    seal_message,
    seal_text,
)
from chatvault.dal.aws.keys import MESSAGE_PREFIX, PROFILE_SK, SESSION_SK
from chatvault.dal.aws.retry import refused, storage_errors
from chatvault.dal.aws.transaction import Refused, Transaction
from chatvault.dal.session_items import plain_map

# The plaintext attributes of a legacy session's items (dal/aws/items.py): the session item's preview, the
# profile's title and metadata, a message's content, metadata and feedback
PREVIEW, TITLE, METADATA, CONTENT, META = "preview", "title", "metadata", "content", "meta"
FEEDBACK = "feedback"
_HEAD = ["pk", "sk", "key_id", "expires_at", "deleted_at", PREVIEW]
ATTEMPTS = 5  # an item's seal tried again from the item as it is now, after a refusal


def _holds_plaintext() -> Any:
    return (
        SessionItem.preview.exists()
        | ProfileItem.title.exists()
        | ProfileItem.metadata.exists()
        | MessageItem.content.exists()
        | MessageItem.meta.exists()
        | MessageItem.feedback.exists()
    )


@dataclass(frozen=True)
class Head:
    """A session item's state, as the Scan, a read or a refused write found it."""

    session_id: str
    key_id: str | None
    expires_at: int  # epoch seconds
    erasing: bool  # its delete has begun (deleted_at: the panic button, an erase, erase-all)
    plaintext: bool  # it still holds its plaintext preview

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Head:
        return cls(
            session_id=raw["pk"]["S"],
            key_id=raw["key_id"]["S"] if "key_id" in raw else None,
            expires_at=int(raw["expires_at"]["N"]) if "expires_at" in raw else 0,
            erasing="deleted_at" in raw,
            plaintext=PREVIEW in raw,
        )


@dataclass
class Survey:
    """What the Scan found: every session item counted; the legacy ones, and those still holding a
    plaintext preview, by id; and the partitions whose items still hold plaintext, with how many."""

    sessions: int = 0
    keyed: int = 0
    heads: dict[str, Head] = field(default_factory=dict)
    plaintext: Counter[str] = field(default_factory=Counter)


@storage_errors
def survey() -> Survey:
    found = Survey()
    table = connection.of(ChatItem)
    start: dict[str, Any] | None = None
    while True:
        page = table.scan(
            ChatItem.Meta.table_name,
            filter_condition=(ChatItem.sk == SESSION_SK) | _holds_plaintext(),
            attributes_to_get=_HEAD,
            consistent_read=True,
            exclusive_start_key=start,  # type: ignore[arg-type]  # a LastEvaluatedKey, passed through as it is
        )
        for raw in page.get("Items", []):
            pk = raw["pk"]["S"]
            if raw["sk"]["S"] != SESSION_SK:
                found.plaintext[pk] += 1
                continue
            head = Head.of(raw)
            found.sessions += 1
            found.keyed += head.key_id is not None
            if head.plaintext:
                found.plaintext[pk] += 1
            if head.key_id is None or head.plaintext:
                found.heads[pk] = head
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


@storage_errors
def head(session_id: str) -> Head | None:
    """The session item's state now (one strongly consistent GetItem); None when it is gone."""
    found = connection.of(ChatItem).get_item(
        ChatItem.Meta.table_name, session_id, SESSION_SK, consistent_read=True, attributes_to_get=_HEAD
    )
    return Head.of(found["Item"]) if found.get("Item") else None


def key_of(session: Head, at: datetime) -> bytes | None:
    """The key a keyed session's items are sealed under: the one its item names (`key_id`), read from
    the keys table; None when it is gone (erased, expired)."""
    if session.key_id is None:
        return None
    held = conversation_keys.read(session.session_id, at)
    return conversation_keys.named(session.session_id, session.key_id, at, held)


@storage_errors
def give_key(session: Head) -> bytes | Head | None:
    """Step 1 for a legacy session: its key, written with its name on the session item (one
    transaction). Refused: the session item as it is now (keyed by another run, being erased, its
    expiry moved), or None when it is gone."""
    expires_at = datetime.fromtimestamp(session.expires_at, tz=UTC)
    key_item, key = conversation_keys.new(session.session_id, expires_at)
    tx = Transaction()
    # unconditional: only the session item's condition decides, and a refused transaction writes
    # nothing (a key left by an expired session under the same id is replaced, as the create does)
    tx.save("key", key_item)
    tx.update(
        "session",
        SessionItem(session.session_id, SESSION_SK),
        [
            SessionItem.key_id.set(conversation_keys.key_id(key)),
            SessionItem.key_expires_at.set(session.expires_at),
        ],
        condition=(
            SessionItem.pk.exists()
            & SessionItem.key_id.does_not_exist()
            & SessionItem.deleted_at.does_not_exist()
            & (SessionItem.expires_at == expires_at)
        ),
        return_values="ALL_OLD",
    )
    try:
        tx.commit()
    except Refused as refused:
        reason = refused.failed("session")
        if reason is None:
            raise
        return Head.of(reason.raw_item) if reason.raw_item else None
    return key


@storage_errors
def plaintext(session_id: str) -> Iterator[list[dict[str, Any]]]:
    """The partition's items still holding plaintext, whole (raw), a page of the Query at a time."""
    table = connection.of(ChatItem)
    start: dict[str, Any] | None = None
    while True:
        page = table.query(
            ChatItem.Meta.table_name,
            session_id,
            filter_condition=_holds_plaintext(),
            consistent_read=True,
            exclusive_start_key=start,  # type: ignore[arg-type]  # a LastEvaluatedKey, passed through as it is
        )
        items = page.get("Items", [])
        if items:
            yield items
        start = page.get("LastEvaluatedKey")
        if not start:
            return


@dataclass
class _Update:
    """One UpdateItem's expressions, its placeholders numbered as they are added."""

    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: dict[str, Any]) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def seal(self, raw: dict[str, Any], plain: tuple[str, ...], sealed: str, value: bytes | None) -> None:
        """Replace the item's plaintext attributes `plain` by `sealed` (`value`; None: an empty value,
        stored as no attribute, as the service writes it), on condition that each is still what was
        read and that no sealed value was written meanwhile."""
        for attribute in plain:
            name = self.name(attribute)
            if attribute not in raw:
                self.conditions.append(f"attribute_not_exists({name})")
                continue
            self.removes.append(name)
            if "M" in raw[attribute]:  # a map (the metadata): still there (DynamoDB compares scalars)
                self.conditions.append(f"attribute_exists({name})")
            else:
                self.conditions.append(f"{name} = {self.value(raw[attribute])}")
        name = self.name(sealed)
        self.conditions.append(f"attribute_not_exists({name})")
        if value is not None:
            self.sets.append(f"{name} = {self.value({'B': value})}")

    def drop(self, plain: str, sealed: str) -> None:
        """The item holds both (a writer sealed the field since it was read): the sealed value is the
        newer one, so only the plaintext is removed, on condition that the sealed value is there."""
        self.removes.append(self.name(plain))
        self.conditions.append(f"attribute_exists({self.name(sealed)})")

    def request(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        if not self.removes:
            return None
        sets = f"SET {', '.join(self.sets)} " if self.sets else ""
        expression = f"{sets}REMOVE {', '.join(self.removes)}"
        request: dict[str, Any] = {
            "TableName": ChatItem.Meta.table_name,
            "Key": {"pk": raw["pk"], "sk": raw["sk"]},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(self.conditions),
            "ExpressionAttributeNames": self.names,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


def sealing(raw: dict[str, Any], key: bytes) -> dict[str, Any] | None:
    """The UpdateItem that replaces this item's plaintext by its sealed values under the session's key,
    or None when it holds none (or, a session item, is sealed under another key)."""
    sort_key = raw["sk"]["S"]
    update = _Update()
    if sort_key == SESSION_SK:
        if raw.get("key_id", {}).get("S") != conversation_keys.key_id(key):
            return None  # not (or no longer) this key's session: never seal under another key
        update.conditions.append(f"{update.name('key_id')} = {update.value(raw['key_id'])}")
        _preview(update, raw, key)
    elif sort_key == PROFILE_SK:
        _profile(update, raw, key)
    elif sort_key.startswith(MESSAGE_PREFIX):
        _message(update, raw, key)
    return update.request(raw)


def _preview(update: _Update, raw: dict[str, Any], key: bytes) -> None:
    if PREVIEW in raw and SEALED_PREVIEW in raw:
        update.drop(PREVIEW, SEALED_PREVIEW)
    elif PREVIEW in raw:
        text = raw[PREVIEW]["S"]
        update.seal(
            raw, (PREVIEW,), SEALED_PREVIEW, seal_text(key, raw["pk"]["S"], SESSION_SK, SEALED_PREVIEW, text)
        )


def _profile(update: _Update, raw: dict[str, Any], key: bytes) -> None:
    session_id = raw["pk"]["S"]
    profile = ProfileItem.from_raw_data(raw)
    if TITLE in raw and SEALED_TITLE in raw:
        update.drop(TITLE, SEALED_TITLE)
    elif TITLE in raw:
        title = seal_text(key, session_id, PROFILE_SK, SEALED_TITLE, profile.title or "")
        update.seal(raw, (TITLE,), SEALED_TITLE, title)
    if METADATA in raw and SEALED_METADATA in raw:
        update.drop(METADATA, SEALED_METADATA)
    elif METADATA in raw:
        metadata = plain_map(profile.metadata)
        text = compact_json(metadata)
        value = seal_text(key, session_id, PROFILE_SK, SEALED_METADATA, text) if metadata else None
        update.seal(raw, (METADATA,), SEALED_METADATA, value)


def _message(update: _Update, raw: dict[str, Any], key: bytes) -> None:
    if SEALED_MESSAGE in raw:
        for plain in (CONTENT, META):
            if plain in raw:
                update.drop(plain, SEALED_MESSAGE)
    elif CONTENT in raw or META in raw:
        content, metadata = history.plaintext_of(raw)
        sealed = seal_message(key, raw["pk"]["S"], raw["sk"]["S"], content, metadata)
        update.seal(raw, (CONTENT, META), SEALED_MESSAGE, sealed)
    if FEEDBACK in raw and SEALED_FEEDBACK in raw:
        update.drop(FEEDBACK, SEALED_FEEDBACK)
    elif FEEDBACK in raw:
        text = raw[FEEDBACK]["S"]
        update.seal(
            raw,
            (FEEDBACK,),
            SEALED_FEEDBACK,
            seal_text(key, raw["pk"]["S"], raw["sk"]["S"], SEALED_FEEDBACK, text),
        )


@storage_errors
def seal_item(raw: dict[str, Any], key: bytes) -> bool:
    """Step 2 for one item: its plaintext replaced by its sealed values (one UpdateItem). True when
    this call replaced it; False when there was nothing (left) to replace, or the item is gone."""
    client = connection.of(ChatItem).client
    current: dict[str, Any] | None = raw
    for _ in range(ATTEMPTS):
        request = sealing(current, key) if current else None
        if request is None:
            return False
        try:
            client.update_item(**request)
        except ClientError as exc:
            if not refused(exc):
                raise
            current = exc.response.get("Item")  # as it is now; None: gone (an erase, its TTL)
            continue
        return True
    return False
