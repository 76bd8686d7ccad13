from __future__ import annotations

import pytest

from chatvault.core.errors import InvalidCursorError
from chatvault.logic.rules import cursor

KEY = {"pk": {"S": "a"}, "sk": {"S": "#S"}}


def test_round_trip() -> None:
    token = cursor.encode("owner:alice", KEY)
    assert token is not None
    assert cursor.decode("owner:alice", token) == KEY


def test_no_key_no_cursor() -> None:
    assert cursor.encode("s", None) is None
    assert cursor.decode("s", None) is None


def test_every_single_character_change_is_refused() -> None:
    token = cursor.encode("owner:alice", KEY)
    assert token
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):
        replacement = alphabet[(alphabet.index(token[i]) + 1) % len(alphabet)]
        tampered = token[:i] + replacement + token[i + 1 :]
        if tampered == token:
            continue
        with pytest.raises(InvalidCursorError):
            cursor.decode("owner:alice", tampered)


@pytest.mark.parametrize("bad", ["", "!!!", "a", "AAAA", "eyJ9"])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidCursorError):
        cursor.decode("owner:alice", bad)


def test_a_cursor_only_works_for_its_own_list() -> None:
    token = cursor.encode("owner:alice", KEY)
    with pytest.raises(InvalidCursorError):
        cursor.decode("owner:bob", token)


def test_a_cursor_longer_than_any_this_service_writes_is_invalid() -> None:
    """400 invalid_cursor, as the contract says, not a 422 for the parameter's length."""
    with pytest.raises(InvalidCursorError):
        cursor.decode("owner:alice", "A" * (cursor.MAX_CURSOR_CHARS + 1))


def test_a_cursor_of_one_of_several_lists_names_its_own() -> None:
    """One history in either order: the cursor says which order it continues."""
    scopes = ["messages:s:asc", "messages:s:desc"]
    token = cursor.encode("messages:s:desc", KEY)
    assert token
    assert cursor.decode_any(scopes, token) == ("messages:s:desc", KEY)
    with pytest.raises(InvalidCursorError):
        cursor.decode_any(["messages:t:asc", "messages:t:desc"], token)
