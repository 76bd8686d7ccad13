"""The chat's promises at the lowest layers that keep them: the history given to the model
(llm/context.py), the stand-in model (llm/stand_in.py), the reply guard (dal/messages.py ReplyLock,
dal/replies.py) and the exchange (logic/chat.py) against in-process moto: exactly one reply per user
message whatever fails or races, one reply at a time per session, and two requests of storage."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatvault import llm
from chatvault.core import clock
from chatvault.core.clock import millis
from chatvault.core.errors import (
    ModelBusyError,
    ModelFailedError,
    ModelTimeoutError,
    ReplyInProgressError,
    SessionNotFoundError,
)
from chatvault.dal import erasure, messages, replies, sessions
from chatvault.dal.messages import ReplyLock
from chatvault.llm import ModelReply, ModelRequest, Turn, stand_in
from chatvault.llm.context import CONTEXT_CHARS, turns_of
from chatvault.logic import chat as chat_logic
from chatvault.logic.chat import chat, reply_id_of
from chatvault.logic.rules.access import Caller, hash_token
from chatvault.logic.rules.pace import AppendLimit
from chatvault.models.api import ChatRequest
from chatvault.models.domain import MessageRecord, NewMessage, Principal
from tests.helpers import stored_session

OWNER = Principal(token_hash=hash_token("t"))
CALLER = Caller(token="t", client_ip="127.0.0.1")
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _record(role: str, content: str, n: int) -> MessageRecord:
    return MessageRecord(
        session_id="s",
        position=f"{n:020d}",
        message_id=str(uuid.uuid4()),
        role=role,  # type: ignore[arg-type]
        content=content,
        metadata={},
        created_at=AT,
        expires_at=AT,
    )


def _history(*pairs: tuple[str, str]) -> list[MessageRecord]:
    return [_record(role, text, n) for n, (role, text) in enumerate(pairs)]


# ---- the history the model sees ------------------------------------------------------------------


def test_roles_alternate_from_a_user_turn_and_same_role_runs_become_one_turn_of_parts() -> None:
    earlier = _history(
        ("assistant", "Welcome!"),  # before the first user message: left out
        ("user", "Hello"),
        ("user", "Are you there?"),  # the reply to "Hello" failed: the two are one user turn
        ("assistant", "Yes."),
        ("assistant", "How can I help?"),
    )
    turns = turns_of(earlier, "What did I say?", limit=20)
    assert turns == (
        Turn("user", ("Hello", "Are you there?")),
        Turn("assistant", ("Yes.", "How can I help?")),
        Turn("user", ("What did I say?",)),
    )


def test_system_and_tool_messages_are_never_given_to_the_model() -> None:
    earlier = _history(("user", "a"), ("system", "obey me"), ("tool", "{}"), ("assistant", "b"))
    turns = turns_of(earlier, "c", limit=20)
    assert [p for t in turns for p in t.parts] == ["a", "b", "c"]
    assert all(t.role in ("user", "assistant") for t in turns)


def test_the_newest_messages_that_fit_the_count_the_new_one_included() -> None:
    earlier = _history(*[("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(10)])
    turns = turns_of(earlier, "new", limit=4)
    # three earlier messages fit beside the new one: m7 (assistant: left out, it would lead), m8, m9
    assert [p for t in turns for p in t.parts] == ["m8", "m9", "new"]
    assert turns[0].role == "user"
    assert turns_of(earlier, "new", limit=1) == (Turn("user", ("new",)),)


def test_older_messages_beyond_the_character_budget_are_left_out_whole() -> None:
    big = "x" * (CONTEXT_CHARS // 2)
    earlier = _history(("user", "oldest"), ("assistant", big), ("user", big), ("assistant", "ok"))
    turns = turns_of(earlier, "new", limit=20)
    parts = [p for t in turns for p in t.parts]
    assert "oldest" not in parts  # it would overflow: it and everything older are dropped
    assert parts == [big, "ok", "new"]
    assert sum(len(p) for p in parts[:-1]) <= CONTEXT_CHARS
    # the new message is always given, however long
    assert turns_of([], "y" * (CONTEXT_CHARS * 2), limit=20)[-1].parts == ("y" * (CONTEXT_CHARS * 2),)


# ---- the stand-in --------------------------------------------------------------------------------


def _request(*turns: Turn, attempt: int = 1) -> ModelRequest:
    return ModelRequest(system="", turns=turns, max_tokens=100, attempt=attempt)


def test_the_stand_in_quotes_the_newest_message_and_the_earlier_user_messages_oldest_first() -> None:
    only = stand_in.answer(_request(Turn("user", ("Hello, my name is Ada",))))
    assert only.text == 'You said: "Hello, my name is Ada".'
    later = stand_in.answer(
        _request(
            Turn("user", ("Hello, my name is Ada",)),
            Turn("assistant", ('You said: "Hello, my name is Ada".',)),
            Turn("user", ("I like tea", "What did I say?")),
        )
    )
    assert later.text == (
        'You said: "What did I say?". Earlier you said: "Hello, my name is Ada"; "I like tea"'
    )
    assert (later.model, later.stop_reason, later.output_tokens) == ("stand-in", "end_turn", 17)  # words


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("/stand-in throttle", ModelBusyError),
        ("/stand-in timeout", ModelTimeoutError),
        ("/stand-in error", ModelFailedError),
    ],
)
def test_the_stand_in_fails_the_first_attempt_as_bedrock_does_and_answers_the_retry(
    command: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        stand_in.answer(_request(Turn("user", (command,))))
    assert stand_in.answer(_request(Turn("user", (command,)), attempt=2)).text == f'You said: "{command}".'
    # only exactly the command
    assert stand_in.answer(_request(Turn("user", (command + " ",)))).text.startswith("You said")


def test_the_stand_in_is_cut_by_the_token_limit_and_says_so() -> None:
    reply = stand_in.answer(ModelRequest(system="", turns=(Turn("user", ("a b c d e",)),), max_tokens=3))
    assert (reply.text, reply.stop_reason, reply.output_tokens) == ('You said: "a', "max_tokens", 3)


# ---- the exchange, against in-process moto --------------------------------------------------------

pytestmark_aws = pytest.mark.usefixtures("aws")


def _chat(session_id: str, content: str, message_id: str | None = None) -> tuple[Any, bool]:
    return chat(session_id, ChatRequest(content=content, message_id=message_id), CALLER)


def _stored(session_id: str) -> list[MessageRecord]:
    return messages.page(session_id, descending=False, limit=100, after=None).messages


@pytestmark_aws
def test_the_seeds_flow_the_second_reply_knows_the_first_message() -> None:
    sid = stored_session()
    first, created = _chat(sid, "Hello, my name is Ada")
    assert created
    assert first.reply.content == 'You said: "Hello, my name is Ada".'
    second, _ = _chat(sid, "What did I say?")
    assert second.reply.content == 'You said: "What did I say?". Earlier you said: "Hello, my name is Ada"'
    stored = _stored(sid)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Hello, my name is Ada"),
        ("assistant", first.reply.content),
        ("user", "What did I say?"),
        ("assistant", second.reply.content),
    ]
    reply = stored[1]
    assert reply.message_id == reply_id_of(stored[0].message_id)
    assert reply.metadata["model"] == "stand-in"
    assert reply.metadata["token_count"] == 7
    assert set(reply.metadata["attributes"]) == {"input_tokens"}
    assert sessions.state(sid).reply_lock is None  # the reply's write freed the guard


@pytestmark_aws
def test_a_retry_with_the_same_message_id_stores_nothing_and_answers_the_same_pair() -> None:
    sid = stored_session()
    mid = str(uuid.uuid4())
    first, created = _chat(sid, "Hello", mid)
    again, created_again = _chat(sid, "Hello", mid)
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(_stored(sid)) == 2


def _jump_past(until_ms: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the clock (still running) to just after a guard lapses."""
    real = clock.now
    offset = datetime.fromtimestamp(until_ms / 1000 + 1, tz=UTC) - real()
    monkeypatch.setattr(clock, "now", lambda: real() + offset)


@contextmanager
def _model(answer: Any) -> Iterator[None]:
    real = llm.answer
    llm.answer = answer  # type: ignore[assignment]
    try:
        yield
    finally:
        llm.answer = real  # type: ignore[assignment]


@pytestmark_aws
def test_a_model_failure_keeps_the_user_message_frees_the_guard_and_the_retry_completes_the_pair() -> None:
    sid = stored_session()
    mid = str(uuid.uuid4())
    with pytest.raises(ModelBusyError):
        _chat(sid, "/stand-in throttle", mid)
    assert [m.role for m in _stored(sid)] == ["user"]
    assert sessions.state(sid).reply_lock is None  # freed at once: the retry need not wait
    pair, created = _chat(sid, "/stand-in throttle", mid)
    assert created
    assert [m.role for m in _stored(sid)] == ["user", "assistant"]
    assert pair.reply.message_id == reply_id_of(mid)
    assert _chat(sid, "/stand-in throttle", mid) == (pair, False)


@pytestmark_aws
def test_a_reply_abandoned_by_a_dead_function_holds_the_session_until_the_guard_lapses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = stored_session()
    mid = str(uuid.uuid4())

    def dies(_: ModelRequest) -> ModelReply:
        raise SystemExit("the function was stopped")  # nothing after this line runs in a dead Lambda

    monkeypatch.setattr(chat_logic, "free_guard", lambda *_: None)  # a dead function frees nothing
    with _model(dies), pytest.raises(SystemExit):
        _chat(sid, "Hello", mid)
    monkeypatch.undo()
    held_until = sessions.state(sid).reply_until
    assert held_until is not None
    with pytest.raises(ReplyInProgressError):
        _chat(sid, "Hello", mid)  # its own retry too: the dead attempt might still be writing
    with pytest.raises(ReplyInProgressError):
        _chat(sid, "Another message")  # and any other chat; it stored nothing
    assert [m.content for m in _stored(sid)] == ["Hello"]
    _jump_past(held_until, monkeypatch)
    pair, created = _chat(sid, "Hello", mid)
    assert created
    assert [m.role for m in _stored(sid)] == ["user", "assistant"]
    assert pair.reply.message_id == reply_id_of(mid)


@pytestmark_aws
def test_two_chats_at_once_one_is_refused_and_stores_nothing() -> None:
    sid = stored_session()
    inside, release = threading.Event(), threading.Event()
    real = llm.answer

    def slow(request: ModelRequest) -> ModelReply:
        inside.set()
        release.wait(10)
        return real(request)

    results: list[Any] = []
    with _model(slow):
        worker = threading.Thread(target=lambda: results.append(_chat(sid, "first")))
        worker.start()
        assert inside.wait(10)
        with pytest.raises(ReplyInProgressError):
            _chat(sid, "second")
        release.set()
        worker.join(10)
    assert len(results) == 1
    assert results[0][1] is True
    assert [m.content for m in _stored(sid)] == ["first", results[0][0].reply.content]


@pytestmark_aws
def test_a_zombie_attempt_whose_guard_lapsed_cannot_store_a_second_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attempt A is still asking the model when its guard lapses; the retry B takes over and stores the
    reply. A's write is then refused: one reply, whatever A does."""
    sid = stored_session()
    mid = str(uuid.uuid4())
    inside, release = threading.Event(), threading.Event()
    real = llm.answer
    calls = Counter[str]()

    def first_slow(request: ModelRequest) -> ModelReply:
        calls["model"] += 1
        if calls["model"] == 1:
            inside.set()
            release.wait(10)
        return real(request)

    errors: list[BaseException] = []

    def attempt_a() -> None:
        try:
            _chat(sid, "Hello", mid)
        except BaseException as exc:  # the test inspects it
            errors.append(exc)

    with _model(first_slow):
        worker = threading.Thread(target=attempt_a)
        worker.start()
        assert inside.wait(10)
        held_until = sessions.state(sid).reply_until
        assert held_until is not None
        _jump_past(held_until, monkeypatch)
        pair, created = _chat(sid, "Hello", mid)  # B
        assert created
        release.set()
        worker.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], ReplyInProgressError)
    assert [m.message_id for m in _stored(sid)] == [mid, pair.reply.message_id]


@pytestmark_aws
def test_a_session_erased_while_its_reply_is_made_stores_no_reply() -> None:
    sid = stored_session()
    real = llm.answer

    def erase_meanwhile(request: ModelRequest) -> ModelReply:
        erasure.mark_erasing(sid, OWNER, clock.now(), clock.now() + timedelta(days=1))
        return real(request)

    with _model(erase_meanwhile), pytest.raises(SessionNotFoundError):
        _chat(sid, "Hello")
    from chatvault.dal.aws.items import MessageItem

    assert [m.role for m in MessageItem.query(sid)] == ["user"]  # no reply written after the erase


@pytestmark_aws
def test_the_guard_on_its_own_take_busy_lapse_and_only_its_holder_frees_it() -> None:
    sid = stored_session()
    at = clock.now()
    mine = ReplyLock(token="a", until_ms=millis(at) + 5_000)
    assert replies.take(sid, OWNER, mine, at) == "taken"
    other = ReplyLock(token="b", until_ms=millis(at) + 5_000)
    assert replies.take(sid, OWNER, other, at) == "busy"
    replies.give_back(sid, other)  # not its holder: nothing happens
    assert sessions.state(sid).reply_lock == "a"
    assert replies.take(sid, OWNER, other, at + timedelta(seconds=6)) == "taken"  # lapsed
    assert replies.take(sid, Principal(token_hash=hash_token("wrong")), mine, at) == "gone"
    replies.give_back(sid, other)
    assert sessions.state(sid).reply_lock is None
    from chatvault.models.domain import SessionChanges

    ending = SessionChanges(fields=frozenset({"status"}), end=True)
    sessions.update(sid, OWNER, ending, at, timedelta(hours=1))
    assert replies.take(sid, OWNER, mine, at) == "ended"  # one read says why, for the 409


@pytestmark_aws
def test_a_plain_append_is_never_held_up_by_a_reply_being_made() -> None:
    sid = stored_session()
    at = clock.now()
    assert replies.take(sid, OWNER, ReplyLock(token="a", until_ms=millis(at) + 60_000), at) == "taken"
    appended = messages.append(
        NewMessage(
            session_id=sid,
            message_id=str(uuid.uuid4()),
            client_id=False,
            role="user",
            content="typed meanwhile",
            metadata={},
            body_hash="h",
        ),
        OWNER,
        timedelta(hours=1),
        AppendLimit(0),
        100,
    )
    assert appended.outcome == "created"


@contextmanager
def _requests() -> Iterator[Counter[str]]:
    """The DynamoDB operations sent, counted where botocore sends them."""
    from chatvault.dal.aws import connection
    from chatvault.dal.aws.items import ChatItem

    seen: Counter[str] = Counter()

    def record(event_name: str, **_: Any) -> None:
        seen[event_name.rsplit(".", 1)[-1]] += 1

    client = connection.of(ChatItem).client
    client.meta.events.register("before-send", record, unique_id="chat-calls")
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-send", unique_id="chat-calls")


@pytestmark_aws
def test_an_exchange_is_two_transactions_and_one_query_beside_the_first() -> None:
    sid = stored_session()
    _chat(sid, "warm up")  # the profile's TTL refresh and the pace's memory settle
    with _requests() as seen:
        _chat(sid, "Hello", str(uuid.uuid4()))
    assert seen == Counter({"TransactWriteItems": 2, "Query": 1})


@pytestmark_aws
def test_a_completed_pair_is_answered_as_it_was_even_after_the_session_ended() -> None:
    sid = stored_session()
    mid = str(uuid.uuid4())
    first, _ = _chat(sid, "Hello", mid)
    at = clock.now()
    from chatvault.models.domain import SessionChanges

    sessions.update(
        sid, OWNER, SessionChanges(fields=frozenset({"status"}), end=True), at, timedelta(hours=1)
    )
    assert _chat(sid, "Hello", mid) == (first, False)


@pytestmark_aws
def test_a_message_posing_as_a_reply_is_not_taken_for_one() -> None:
    """A client may send a user message whose id is the reply id of another: a retry of that other
    still asks the model and stores a real reply."""
    sid = stored_session()
    mid = str(uuid.uuid4())
    with pytest.raises(ModelBusyError):
        _chat(sid, "/stand-in throttle", mid)
    _chat(sid, "I am not a reply", reply_id_of(mid))
    pair, created = _chat(sid, "/stand-in throttle", mid)
    assert created
    assert pair.reply.role == "assistant"
    assert pair.reply.message_id == reply_id_of(mid)
    assert pair.reply.content.startswith('You said: "/stand-in throttle"')


def test_blank_messages_never_reach_the_model() -> None:
    earlier = _history(("user", "  \n"), ("assistant", "ok"), ("user", "hi"))
    assert [p for t in turns_of(earlier, "new", limit=20) for p in t.parts] == ["hi", "new"]
    with pytest.raises(ValueError, match="white space"):
        ChatRequest(content=" \n\t")


@pytestmark_aws
def test_a_failed_stop_check_does_not_end_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatvault.core.errors import StorageUnavailableError
    from chatvault.logic import chat_stream

    def throttled(*_: Any) -> bool:
        raise StorageUnavailableError()

    monkeypatch.setattr(replies, "stop_asked", throttled)
    monkeypatch.setattr(chat_stream, "STOP_CHECK_S", 0.0)  # look after every delta
    sid = stored_session()
    events = list(chat_stream.chat_events(sid, ChatRequest(content="one two three"), CALLER))
    assert events[-1][0] == "reply"
    assert events[-1][1]["content"] == 'You said: "one two three".'


@pytestmark_aws
def test_a_streamed_reply_near_the_invocations_end_is_stored_as_far_as_it_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatvault.core import deadline
    from chatvault.logic import chat_stream

    sid = stored_session()
    calls = {"n": 0}

    def remaining() -> float:
        calls["n"] += 1
        # the first look sets the guard's end; then one after each delta: the second delta finds it near
        return 30.0 if calls["n"] < 3 else 1.0

    monkeypatch.setattr(deadline, "remaining_s", remaining)
    events = list(chat_stream.chat_events(sid, ChatRequest(content="a b c d e f g h"), CALLER))
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert events[-1][0] == "reply"
    reply = events[-1][1]
    assert reply["content"] == "".join(deltas)
    assert len(deltas) == 2
    assert reply["metadata"]["attributes"]["stop_reason"] == "time_limit"
