"""Lambda's event filtering (an event source's FilterCriteria), the subset the templates use: a pattern
is a JSON object whose leaves are lists of accepted values, each an exact value (string, number,
boolean, null) or `{"prefix": "..."}`; an object in the pattern matches the record's object of that name
field by field. A record passes when one of the filters matches it (Filters are OR'ed).

Anything else Lambda accepts (`anything-but`, `numeric`, `exists`, `suffix`, `equals-ignore-case`,
`wildcard`, `cidr`, `$or`) raises when the pattern is read: a template that starts using one must not
pass every record, or none, without a word.

For an SQS event source the body is matched as JSON when it is a JSON object (Lambda's rule), as a
plain string otherwise."""

from __future__ import annotations

import json
from typing import Any

Pattern = dict[str, Any]


class UnsupportedFilter(ValueError):
    """A filter rule the local event sources do not implement."""


def patterns(props: dict[str, Any]) -> list[Pattern]:
    """The event's FilterCriteria, each pattern parsed and checked (raises UnsupportedFilter)."""
    found = []
    for entry in props.get("FilterCriteria", {}).get("Filters", []):
        raw = entry["Pattern"]
        pattern = json.loads(raw) if isinstance(raw, str) else raw
        _check(pattern, path="")
        found.append(pattern)
    return found


def _check(pattern: Any, path: str) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise UnsupportedFilter(f"filter pattern at {path or 'its top'}: an object of fields is expected")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if key.startswith("$"):
            raise UnsupportedFilter(f"filter pattern at {where}: {key} is not run locally")
        if isinstance(value, dict):
            _check(value, where)
        elif isinstance(value, list):
            for rule in value:
                if isinstance(rule, dict):
                    if set(rule) != {"prefix"} or not isinstance(rule["prefix"], str):
                        raise UnsupportedFilter(
                            f"filter rule {json.dumps(rule)} at {where} is not run locally"
                        )
                elif isinstance(rule, list):
                    raise UnsupportedFilter(f"filter pattern at {where}: a list inside a list")
        else:
            raise UnsupportedFilter(f"filter pattern at {where}: a list of values or an object is expected")


def matches(pattern: Pattern, record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    for key, value in pattern.items():
        if key not in record:
            return False
        if isinstance(value, dict):
            if not matches(value, record[key]):
                return False
        elif not any(_rule(rule, record[key]) for rule in value):
            return False
    return True


def _rule(rule: Any, candidate: Any) -> bool:
    if isinstance(rule, dict):
        return isinstance(candidate, str) and candidate.startswith(rule["prefix"])
    if isinstance(rule, bool) or isinstance(candidate, bool) or rule is None or candidate is None:
        return rule is candidate
    if isinstance(rule, int | float) and isinstance(candidate, int | float):
        return rule == candidate
    return type(rule) is type(candidate) and rule == candidate


def passes(filters: list[Pattern], record: dict[str, Any]) -> bool:
    """No filters: every record. Otherwise the record matches one of them."""
    return not filters or any(matches(pattern, record) for pattern in filters)


def sqs_view(record: dict[str, Any]) -> dict[str, Any]:
    """What an SQS record's filter sees: its body as JSON when it is a JSON object."""
    try:
        body = json.loads(record["body"])
    except ValueError:
        body = record["body"]
    return {**record, "body": body if isinstance(body, dict) else record["body"]}
