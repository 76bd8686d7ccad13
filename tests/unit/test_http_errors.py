from __future__ import annotations

import inspect
import json

import pytest

from chatvault.core import errors
from chatvault.http.errors import ERROR_MAP, from_domain, from_validation, internal


def _domain_errors() -> list[type[errors.ChatVaultError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ChatVaultError) and cls is not errors.ChatVaultError
    ]


@pytest.mark.parametrize("cls", _domain_errors())
def test_every_domain_error_has_one_mapping_and_a_json_body(cls: type[errors.ChatVaultError]) -> None:
    assert cls in ERROR_MAP or cls is errors.ChatStartedError  # answered as its cause
    special = {
        errors.MethodNotAllowedError: lambda: errors.MethodNotAllowedError(["GET"]),
        errors.ValidationFailedError: lambda: errors.ValidationFailedError("body.x", "bad"),
        errors.RateLimitedError: lambda: errors.RateLimitedError(17),
        errors.ModelBusyError: lambda: errors.ModelBusyError(5),
        errors.ChatStartedError: lambda: errors.ChatStartedError(errors.ModelTimeoutError(), {"session": {}}),
    }
    exc = special.get(cls, cls)()
    response = from_domain(exc, "req-1")
    status, code = ERROR_MAP[errors.ModelTimeoutError if cls is errors.ChatStartedError else cls]
    body = json.loads(response.body)
    assert response.status_code == status
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == "req-1"
    assert body["error"]["message"].endswith(".")
    # the server's own failures: storage, and the model (the chat routes)
    model = (errors.ModelBusyError, errors.ModelTimeoutError, errors.ModelFailedError)
    model += (errors.ChatStartedError,)
    assert 400 <= status < 500 or cls is errors.StorageUnavailableError or cls in model


def test_a_chat_that_created_its_session_answers_its_failure_with_the_session_beside() -> None:
    """Without it, the new session's token (sent only once) would be lost with the failure."""
    started = {"session": {"session_id": "s", "session_token": "t"}, "message": {"message_id": "m"}}
    response = from_domain(errors.ChatStartedError(errors.ModelBusyError(5), started), "r")
    body = json.loads(response.body)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert body["error"]["code"] == "model_unavailable"
    assert body["session"] == started["session"]
    assert body["message"] == started["message"]


def test_unavailable_says_when_to_retry() -> None:
    response = from_domain(errors.StorageUnavailableError(), "r")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_rate_limited_says_when_the_window_closes() -> None:
    response = from_domain(errors.RateLimitedError(17), "r")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "17"


def test_method_not_allowed_lists_the_allowed_methods() -> None:
    response = from_domain(errors.MethodNotAllowedError(["GET", "PATCH"]), "r")
    assert response.headers["Allow"] == "GET, PATCH"


def test_malformed_json_is_400_not_422() -> None:
    response = from_validation(
        [{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error"}], "r"
    )
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["code"] == "invalid_json"


def test_validation_details_name_the_field() -> None:
    response = from_validation(
        [
            {
                "type": "string_too_long",
                "loc": ("body", "title"),
                "msg": "String should have at most 200 characters",
            },
            {"type": "value_error", "loc": ("body",), "msg": "Value error, send at least one"},
        ],
        "r",
    )
    body = json.loads(response.body)["error"]
    assert response.status_code == 422
    assert body["details"] == [
        {"field": "body.title", "problem": "String should have at most 200 characters"},
        {"field": "body", "problem": "send at least one"},
    ]


def test_an_optional_fields_wrong_value_is_one_detail_at_the_fields_name() -> None:
    """Pydantic reports each branch of `int | None`; the client is told of the field once."""
    response = from_validation(
        [
            {
                "type": "value_error",
                "loc": ("body", "retention_hours", "function-before[_integral(), constrained-int]"),
                "msg": "Value error, must be an integer",
            },
            {
                "type": "none_required",
                "loc": ("body", "retention_hours", "none"),
                "msg": "Input should be None",
            },
            {"type": "missing", "loc": ("body", "title"), "msg": "Field required"},
        ],
        "r",
    )
    assert json.loads(response.body)["error"]["details"] == [
        {"field": "body.retention_hours", "problem": "must be an integer"},
        {"field": "body.title", "problem": "Field required"},
    ]


def test_a_lone_none_error_is_kept_as_it_is() -> None:
    """Only a union's None branch is dropped: where nothing else failed, its error is the only word."""
    error = {"type": "none_required", "loc": ("body", "x", "none"), "msg": "Input should be None"}
    details = json.loads(from_validation([error], "r").body)["error"]["details"]
    assert details == [{"field": "body.x.none", "problem": "Input should be None"}]


def test_internal_errors_leak_nothing() -> None:
    body = json.loads(internal("r").body)
    assert body == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side.", "request_id": "r"}
    }
