"""The Python client writes times as the contract does: ISO-8601 UTC with milliseconds and `Z`
(`2026-11-22T10:04:05.123Z`), wherever a model becomes JSON (model_dump_json, model_dump(mode="json"):
what a bot prints or stores), and keeps them datetimes in Python."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from chatvault_client import models
from pydantic import BaseModel

CONTRACT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

SESSION = {
    "session_id": "3f6c2a9e-8d14-4b7a-9c21-5e0f7a1b2c3d",
    "title": None,
    "metadata": {},
    "status": "active",
    "created_at": "2026-11-22T10:04:05.123Z",
    "updated_at": "2026-11-22T10:04:05.000Z",  # a whole second: still three digits
    "last_message_at": "2026-11-22T12:04:06.5+02:00",  # another offset: written in UTC
    "message_count": 1,
    "preview": "hi",
    "expires_at": "2026-12-22T10:04:05.999Z",
    "retention_hours": 720,
}
MESSAGE = {
    "message_id": "9b2d4c1e-3f5a-4e6b-8c7d-0a1b2c3d4e5f",
    "session_id": SESSION["session_id"],
    "role": "user",
    "content": "hi",
    "created_at": "2026-11-22T10:04:06.001Z",
}
EXPECTED = {
    "2026-11-22T10:04:05.123Z": "2026-11-22T10:04:05.123Z",
    "2026-11-22T10:04:05.000Z": "2026-11-22T10:04:05.000Z",
    "2026-11-22T12:04:06.5+02:00": "2026-11-22T10:04:06.500Z",
    "2026-12-22T10:04:05.999Z": "2026-12-22T10:04:05.999Z",
    "2026-11-22T10:04:06.001Z": "2026-11-22T10:04:06.001Z",
    "2026-11-22T10:09:05.123Z": "2026-11-22T10:09:05.123Z",
}

ANSWERS: list[tuple[type[models._Answer], dict[str, Any]]] = [
    (models.Session, SESSION),
    (models.CreatedSession, {**SESSION, "session_token": "t"}),
    (models.Message, MESSAGE),
    (models.ChatPair, {"message": MESSAGE, "reply": {**MESSAGE, "role": "assistant"}}),
    (models.StartedChat, {"session": SESSION, "message": MESSAGE, "reply": MESSAGE}),
    (models.MessagePage, {"items": [MESSAGE], "next_cursor": None}),
    (models.SessionPage, {"items": [SESSION], "next_cursor": None}),
    (
        models.DeleteReceipt,
        {
            "session_id": SESSION["session_id"],
            "deleted_at": "2026-11-22T10:04:05.123Z",
            "erased": {"messages": 1, "uploads": 0},
        },
    ),
    (
        models.Upload,
        {
            "upload_id": "u",
            "key": "k",
            "url": "https://example.test",
            "fields": {},
            "expires_at": "2026-11-22T10:09:05.123Z",
            "max_bytes": 1,
        },
    ),
]


def _times(value: Any) -> list[tuple[str, str]]:
    """Every (field, value) of a JSON document whose field is a time (`…_at`)."""
    if isinstance(value, dict):
        found = [(k, v) for k, v in value.items() if k.endswith("_at") and v is not None]
        return found + [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return []


def _source_times(value: Any) -> list[str]:
    return [v for _, v in _times(value)]


@pytest.mark.parametrize(("model", "answer"), ANSWERS, ids=[m.__name__ for m, _ in ANSWERS])
def test_every_time_of_an_answer_is_written_in_the_contracts_form(
    model: type[models._Answer], answer: dict[str, Any]
) -> None:
    parsed = model.model_validate(answer)
    expected = [EXPECTED[v] for v in _source_times(answer)]
    assert expected  # the model has times to check
    for written in (json.loads(parsed.model_dump_json()), parsed.model_dump(mode="json")):
        times = _times(written)
        assert [v for _, v in times] == expected
        assert all(CONTRACT_TIME.match(v) for _, v in times), times


def test_in_python_the_times_stay_datetimes_in_utc() -> None:
    session = models.Session.model_validate(SESSION)
    assert session.last_message_at == datetime(2026, 11, 22, 10, 4, 6, 500_000, tzinfo=UTC)
    assert isinstance(session.model_dump()["created_at"], datetime)


def test_every_time_field_of_the_client_is_written_so() -> None:
    """Every datetime field of every model, in this test's samples or not, has the contract's
    serializer (the Timestamp type): a field a model gains cannot fall back to pydantic's form."""
    fields = [
        (model.__name__, name, field)
        for model in vars(models).values()
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items()
        if "datetime" in str(field.annotation)
    ]
    assert len(fields) >= 7
    for model, name, field in fields:
        assert "contract_time" in str(field.annotation) + str(field.metadata), f"{model}.{name}"
