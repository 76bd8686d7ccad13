"""Request bodies read as JSON, defensively: whatever a client sends is a clean 400 or 422, never a 5xx.

Python's `json.loads` alone lets four kinds of input through to a crash or to storage:
- nesting thousands deep raises RecursionError (a 500), and even a few hundred levels make every later
  walk over the value costly: a body nested deeper than MAX_DEPTH is not one this API could accept;
- an integer literal over 4,300 digits raises ValueError (Python's int limit);
- `NaN`, `Infinity` and `-Infinity` are not JSON (RFC 8259) but are accepted by default;
- a `\\ud800` escape decodes to a lone surrogate, which is not Unicode text and fails later when the
  value is encoded as UTF-8 for DynamoDB.
Each is reported as json.JSONDecodeError, which the resolver answers with 400 `invalid_json`. Integers
longer than MAX_INT_DIGITS are read as floats (possibly infinite): every integer field has bounds, so
validation refuses them with 422 instead of spending CPU on a number no field can hold."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
MAX_INT_DIGITS = 40


class _NotJsonError(ValueError):
    pass


def _int(literal: str) -> int | float:
    return int(literal) if len(literal) <= MAX_INT_DIGITS else float(literal)


def _constant(name: str) -> Any:
    raise _NotJsonError(f"{name} is not a JSON value")


def _refuse(reason: str, text: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(reason, text, 0)


def _is_text(value: str) -> bool:
    """Unicode text that UTF-8 can encode (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(value: Any, text: str) -> None:
    """One iterative pass over the value: depth and text. No recursion, whatever the input."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            if not _is_text(node):
                raise _refuse("a string is not valid Unicode text (lone surrogate)", text)
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise _refuse(f"nested deeper than {MAX_DEPTH} levels", text)
            if isinstance(node, dict):
                for key, item in node.items():
                    if not _is_text(key):
                        raise _refuse("a key is not valid Unicode text (lone surrogate)", text)
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in node)


def parse(text: str) -> Any:
    """The body as a Python value, or json.JSONDecodeError (400 `invalid_json`)."""
    try:
        value = json.loads(text, parse_int=_int, parse_constant=_constant)
    except RecursionError as exc:
        raise _refuse(f"nested deeper than {MAX_DEPTH} levels", text) from exc
    except _NotJsonError as exc:
        raise _refuse(str(exc), text) from exc
    _check(value, text)
    return value
