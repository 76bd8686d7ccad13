"""tests/events/ holds one canonical event per function (usable with `sam local invoke -e` and
`make invoke`); each must drive its handler to the expected answer."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

import pytest

from tests.helpers import context

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _invoke(function: str, event_file: str) -> tuple[int, dict]:
    event = json.loads((EVENTS / event_file).read_text())
    result = import_module(f"functions.{function}.app").lambda_handler(event, context(function))
    return result["statusCode"], json.loads(result["body"])


def test_every_function_has_an_event() -> None:
    functions = {p.name for p in (EVENTS.parents[1] / "functions").iterdir() if (p / "app.py").exists()}
    assert {p.stem for p in EVENTS.glob("*.json")} >= functions


@pytest.mark.usefixtures("aws")
def test_session_events_drive_their_handlers() -> None:
    status, created = _invoke("create_session", "create_session.json")
    assert status == 201
    assert created["session_id"] == "3f6c2a9e-8d14-4b7a-9c21-5e0f7a1b2c3d"
    # the placeholder token is not the session's token: the right answer is 404
    for function in (
        "get_session",
        "update_session",
        "delete_session",
        "append_message",
        "list_messages",
        "chat",
        "stop_reply",
        "chat_stream",
    ):
        status, body = _invoke(function, f"{function}.json")
        assert (status, body["error"]["code"]) == (404, "session_not_found"), function
    event = json.loads((EVENTS / "create_upload.json").read_text())
    result = import_module("functions.create_upload.app").lambda_handler(event, context("create_upload"))
    assert result["statusCode"] == 404
    status, document = _invoke("get_api_document", "get_api_document.json")
    assert status == 200
    assert document["openapi"].startswith("3.1")
    status, body = _invoke("route_fallback", "route_fallback.json")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    status, body = _invoke("claim_session", "claim_session.json")  # anonymous mode: no claims
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.usefixtures("aws")
def test_the_scheduled_event_drives_the_sweep() -> None:
    event = json.loads((EVENTS / "sweep_orphans.json").read_text())
    report = import_module("functions.sweep_orphans.app").lambda_handler(event, context("sweep_orphans"))
    assert report["complete"] is True
    assert report["prefixes_scanned"] == 0


@pytest.mark.usefixtures("aws", "jwt_mode")
def test_list_event_drives_its_handler_in_jwt_mode() -> None:
    status, body = _invoke("list_sessions", "list_sessions.json")
    assert status == 200
    assert body == {"items": [], "next_cursor": None}


@pytest.mark.usefixtures("aws")
def test_the_rights_events_drive_their_handlers() -> None:
    for function in ("list_uploads", "get_upload", "export_session"):
        status, body = _invoke(function, f"{function}.json")
        assert (status, body["error"]["code"]) == (404, "session_not_found"), function


@pytest.mark.usefixtures("aws")
def test_the_chat_history_events_drive_their_handlers() -> None:
    for function in ("message_feedback", "share_links"):
        status, body = _invoke(function, f"{function}.json")
        assert (status, body["error"]["code"]) == (404, "session_not_found"), function
    status, body = _invoke("get_shared", "get_shared.json")  # no such link
    assert (status, body["error"]["code"]) == (404, "share_not_found")
    event = json.loads((EVENTS / "confirm_upload.json").read_text())
    report = import_module("functions.confirm_upload.app").lambda_handler(event, context("confirm_upload"))
    assert report == {"stored": 0, "refused": 1, "ignored": 0}  # no upload behind the key: deleted


@pytest.mark.usefixtures("aws", "jwt_mode")
def test_the_erase_all_event_drives_its_handler_in_jwt_mode() -> None:
    status, body = _invoke("erase_all_sessions", "erase_all_sessions.json")
    assert status == 200
    assert body["erased"] == {"sessions": 0, "messages": 0, "uploads": 0}


@pytest.mark.usefixtures("aws")
def test_the_stream_event_drives_the_publisher() -> None:
    """The canned record names a message that is not stored (erased, or never there): no event, and
    no failure for Lambda to retry."""
    import boto3

    from chatvault.core.settings import get_settings

    event = json.loads((EVENTS / "publish_message_events.json").read_text())
    result = import_module("functions.publish_message_events.app").lambda_handler(
        event, context("publish_message_events")
    )
    assert result == {"batchItemFailures": []}
    queued = boto3.client("sqs").receive_message(QueueUrl=get_settings().events_queue_url)
    assert queued.get("Messages", []) == []


@pytest.mark.usefixtures("aws")
def test_the_ttl_removal_event_drives_the_file_remover() -> None:
    """The canned record is the TTL's removal of an upload record whose file was never sent: its key
    is deleted all the same (no error), and the answer says how many were asked for."""
    event = json.loads((EVENTS / "remove_expired_files.json").read_text())
    result = import_module("functions.remove_expired_files.app").lambda_handler(
        event, context("remove_expired_files")
    )
    assert result == {"removed": 1}
