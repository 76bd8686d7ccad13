"""The defensive JSON reader (http/body.py): every hostile body is json.JSONDecodeError (400), at once,
and integers too long for any field become floats that validation refuses (422)."""

from __future__ import annotations

import json
import math

import pytest

from chatvault.http import body


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "[" * 100_000,
        "[" * (body.MAX_DEPTH + 1) + "]" * (body.MAX_DEPTH + 1),
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": -Infinity}',
        '{"x": "\\ud800"}',
        '{"\\udfff": 1}',
        '{"x": ["ok", "\\ud83d"]}',
    ],
)
def test_hostile_bodies_are_json_errors(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        body.parse(text)


def test_nesting_up_to_the_limit_is_read() -> None:
    depth = body.MAX_DEPTH
    assert body.parse("[" * depth + "]" * depth) is not None


def test_huge_integers_are_read_cheaply_as_floats() -> None:
    """Past Python's 4,300-digit limit too (a ValueError, once a 500): no field holds such a number."""
    value = body.parse('{"n": ' + "9" * 100_000 + ', "m": -' + "9" * 5000 + "}")
    assert math.isinf(value["n"])
    assert math.isinf(value["m"])
    assert body.parse('{"n": ' + "1" * body.MAX_INT_DIGITS + "}")["n"] == int("1" * body.MAX_INT_DIGITS)


def test_valid_text_is_kept_exactly() -> None:
    text = '{"t": "\\ud83d\\ude00 caf\\u00e9", "n": 12, "f": 1.5, "b": true, "z": null}'
    assert body.parse(text) == {"t": "\U0001f600 café", "n": 12, "f": 1.5, "b": True, "z": None}
