"""What the dal returns and the logic works with. Never a raw DynamoDB item."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeGuard

from pydantic import BaseModel, ConfigDict

from chatvault.core.clock import millis

SessionStatus = Literal["active", "ended"]


class Record(BaseModel):
    """Immutable; its validator is built on first use, so a function pays only for the models it uses."""

    model_config = ConfigDict(frozen=True, defer_build=True)


class SessionRecord(Record):
    """A stored session, with the secrets the API never returns (token hash, owner). Reads that need
    only who owns it and its state (appends, pages) do not fetch its profile: `title` is then None
    and `metadata` empty."""

    session_id: str
    token_hash: str | None
    owner_id: str | None
    title: str | None = None
    metadata: dict[str, str] = {}
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    message_count: int
    preview: str | None
    expires_at: datetime
    uploads_issued: int = 0
    deleted_at: datetime | None = None
    last_position: str | None = None
    append_tat: int | None = None
    profile_expires_at: int | None = None  # epoch seconds
    # the one-reply-at-a-time guard (dal/messages.py ReplyLock): who is making a reply, until when
    reply_lock: str | None = None
    reply_until: int | None = None  # epoch milliseconds
    reply_stopped: str | None = None  # the guard's token, once the person pressed Stop
    # the conversation's key (dal/aws/items.py): its name and when its TTL falls (epoch seconds); None for
    # a session written before conversations had keys (plaintext)
    key_id: str | None = None
    key_expires_at: int | None = None
    # a temporary conversation, and the session's own retention in hours (None: the deployment's)
    temporary: bool = False
    retention_hours: int | None = None

    def replying(self, at: datetime) -> bool:
        """A reply is being made (its guard is held and has not lapsed)."""
        return self.reply_until is not None and self.reply_until >= millis(at)

    def is_live(self, at: datetime) -> bool:
        """Readable: not expired (TTL deletes late) and not being erased."""
        return self.deleted_at is None and self.expires_at > at

    def keeps(self, written_at: datetime, expires_at: datetime, at: datetime, deployment: timedelta) -> bool:
        """An item of this conversation (a message, an upload) is readable: before its own expiry, and
        never longer than the conversation's retention after it was written (`kept`)."""
        return kept(written_at, expires_at, at, retention_of(self.retention_hours, deployment))


class NewSession(Record):
    """A session about to be created."""

    session_id: str
    token_hash: str | None
    owner_id: str | None
    title: str | None
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime
    temporary: bool = False
    retention_hours: int | None = None  # its own retention (None: the deployment's)


def retention_of(hours: int | None, deployment: timedelta) -> timedelta:
    """A session's retention: its own (`retention_hours`), never more than the deployment's."""
    return deployment if hours is None else min(timedelta(hours=hours), deployment)


def kept(written_at: datetime, expires_at: datetime, at: datetime, retention: timedelta) -> bool:
    """The read rule of a conversation's items: one is readable until its TTL (DynamoDB deletes late),
    and never longer than the conversation's retention after it was written, so a retention lowered
    by PATCH hides what it passed from the next read on, whatever TTLs are still being moved."""
    return expires_at > at and written_at + retention > at


class SessionChanges(Record):
    """A PATCH: only the fields the client sent are applied (`fields`)."""

    fields: frozenset[str]
    title: str | None = None
    metadata: dict[str, str] | None = None
    end: bool = False
    retention_hours: int | None = None  # the conversation's own retention, when the PATCH sets it
    temporary_allowed: bool = True  # that retention is one a temporary conversation may have


class EraseReceipt(Record):
    session_id: str
    deleted_at: datetime
    messages: int
    uploads: int


class Principal(Record):
    """Who may act on a session: the holder of its token (anonymous sessions), a JWT subject (its
    owner), or the service writer (the chatbot's back end, authorized by IAM: any session)."""

    token_hash: str | None = None
    owner_id: str | None = None
    service: bool = False

    def may_use(self, session: SessionRecord) -> bool:
        """Whether the session is this principal's (compared in constant time). A token stops working
        once its session is claimed by a signed-in user."""
        if self.service:
            return True
        if self.owner_id is not None:
            return session.owner_id is not None and hmac.compare_digest(session.owner_id, self.owner_id)
        return (
            session.owner_id is None
            and session.token_hash is not None
            and hmac.compare_digest(session.token_hash, self.token_hash or "")
        )

    def may_use_live(self, session: SessionRecord | None, at: datetime) -> TypeGuard[SessionRecord]:
        """Whether the session exists, is this principal's and is live at `at`: what authorize_live
        requires, and what the storage's refused writes read to tell "gone" from a busy session."""
        return session is not None and self.may_use(session) and session.is_live(at)


Role = Literal["user", "assistant", "system", "tool"]


class Feedback(Record):
    """A person's rating of a reply (PUT .../messages/{id}/feedback); the comment is content."""

    rating: Literal["up", "down"]
    comment: str | None = None
    updated_at: datetime


class MessageRecord(Record):
    session_id: str
    position: str
    message_id: str
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    feedback: Feedback | None = None


class Pace(Record):
    """The append rate limit's step for one append attempt (logic/rules/pace.py), in microseconds: whether
    the session is expected busy (its tat in [now, now + window - interval]: tat += interval) or idle
    (no tat, or tat < now: tat = now + interval), and the tat the guess was based on."""

    busy: bool
    now: int
    interval: int
    window: int
    seen: int | None = None

    @property
    def ceiling(self) -> int:
        """The highest tat a busy session may have for this append to fit in the window."""
        return self.now + self.window - self.interval


class Pacer(Protocol):
    """The append rate limit as the dal's append uses it (logic/rules/pace.py's AppendLimit): the step
    of each attempt (None: no limit), and the accepted one."""

    def step(self, session_id: str, now: datetime, known: int | None, *, first: bool) -> Pace | None: ...

    def accepted(self, session_id: str, pace: Pace | None) -> None: ...


class NewMessage(Record):
    """A message about to be appended; `body_hash` identifies its content for idempotent retries, and
    `client_id` says whether the client chose `message_id` (then a marker keeps it)."""

    session_id: str
    message_id: str
    client_id: bool
    role: Role
    content: str
    metadata: dict[str, Any]
    body_hash: str


class Appended(Record):
    """How an append ended (dal/messages.py):
    - created: this call stored `message`;
    - replayed: an earlier call with the same message id and body stored `message`;
    - conflict: the message id was already used with another body;
    - ended: the session was ended (PATCH status "ended");
    - full: the session holds MaxSessionMessages messages already;
    - busy: the session's reply guard is another's (a reply is being made; dal/messages.py ReplyLock);
    - missing: no such session for this caller (absent, another's, expired or being erased)."""

    outcome: Literal["created", "replayed", "conflict", "ended", "full", "busy", "missing"]
    message: MessageRecord | None = None


class MessagePage(Record):
    head: SessionRecord | None  # the session item, read with the page: it authorizes the reader
    messages: list[MessageRecord]
    last_position: str | None


UploadStatus = Literal["pending", "stored"]


class ShareRecord(Record):
    """A share link (dal/shares.py): a read-only snapshot of a conversation, by reference."""

    session_id: str
    share_id: str
    created_at: datetime
    expires_at: datetime
    limit_at: datetime  # created_at + ShareHours
    upto: str | None  # the newest message's position when it was made (None: none yet)
    message_count: int


class UploadRecord(Record):
    """An upload's declaration and state (never its file name)."""

    session_id: str
    upload_id: str
    content_type: str
    size: int
    status: UploadStatus
    created_at: datetime
    expires_at: datetime


# The refusals the audit trail records, counted per client, action and minute (logic/rules/limits.py)
RefusalEvent = Literal["rate_limited", "session_exists"]


class AuditEntry(Record):
    """One lifecycle event. Ids, counts and fingerprints only: never content, file names, tokens or
    raw IP addresses."""

    session_id: str | None = None  # None for refusals that concern a client, not a session
    event: Literal[
        "session_created",
        "session_ended",
        "session_deleted",
        "session_claimed",
        "upload_issued",
        "orphan_files_swept",
        "interrupted_delete_finished",
        "erased_by_operator",
        "rate_limited",
        "session_exists",
        "sweep_finished",
        "session_exported",
    ]
    at: datetime
    actor: str | None = None  # the client fingerprint
    details: dict[str, int | str] = {}


class RateCharge(Record):
    """One request counted against a client's per-minute limit for an action."""

    action: Literal["create_session", "create_upload"]
    client: str  # the client fingerprint
    at: datetime
    per_minute: int

    @property
    def window(self) -> int:
        return int(self.at.timestamp()) // 60

    @property
    def retry_after(self) -> int:
        """Seconds until the current window closes."""
        return max(1, 60 - int(self.at.timestamp()) % 60)
