"""An upload's file goes when DynamoDB's TTL removes its record (RemoveExpiredFilesFunction): the
stream's filter passes only the TTL process's removals of upload records, and the function deletes
their files. In-process: moto neither runs TTL nor names a removal's remover, so the TTL's record is
built as DynamoDB Streams writes it (userIdentity), beside the real records of the service's own
writes and deletes, which the filter must not pass."""

from __future__ import annotations

import copy
from importlib import import_module
from typing import Any

import pytest

from chatvault.core.errors import StorageUnavailableError
from chatvault.dal import uploads
from chatvault.logic.remove_expired_files import ExpiredRecord, remove_expired_files
from tests.helpers import call, context, create, stored_upload, stream_filters, stream_records

pytestmark = pytest.mark.usefixtures("aws")

TTL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def _stored_upload(session: dict[str, Any]) -> str:
    return stored_upload(session["session_id"], session["session_token"])


def _removed_by_ttl(session_id: str, sort_key: str) -> dict[str, Any]:
    """A REMOVE record as DynamoDB Streams writes it for the TTL process's deletion (keys only)."""
    return {
        "eventID": "1",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "Keys": {"pk": {"S": session_id}, "sk": {"S": sort_key}},
            "SequenceNumber": "1",
            "SizeBytes": 90,
            "StreamViewType": "KEYS_ONLY",
        },
        "userIdentity": dict(TTL),
    }


def _files(session_id: str) -> list[str]:
    return [o.key for o in uploads.objects(f"uploads/{session_id}/")]


def test_the_ttls_removal_of_an_upload_record_deletes_its_file_and_no_other() -> None:
    kept, expired = create().body, create().body
    kept_upload, gone_upload = _stored_upload(kept), _stored_upload(expired)
    other_upload = _stored_upload(expired)
    records = [
        _removed_by_ttl(expired["session_id"], "U#" + gone_upload),
        _removed_by_ttl(expired["session_id"], "M#01796515200000000"),  # a message's: no file
    ]
    handler = import_module("functions.remove_expired_files.app").lambda_handler

    assert handler({"Records": records}, context("remove_expired_files")) == {"removed": 1}

    assert _files(expired["session_id"]) == [uploads.key_for(expired["session_id"], other_upload)]
    assert _files(kept["session_id"]) == [uploads.key_for(kept["session_id"], kept_upload)]
    # again (Lambda retried the batch): nothing to delete, no error
    assert handler({"Records": records}, context("remove_expired_files")) == {"removed": 1}


def test_a_record_that_names_no_upload_of_ours_touches_nothing() -> None:
    session = create().body
    upload_id = _stored_upload(session)
    for sort_key in ("U#../../other", "U#" + upload_id + "/x", "U#not-a-uuid"):
        assert remove_expired_files([ExpiredRecord(session["session_id"], sort_key)]) == 0
    assert remove_expired_files([ExpiredRecord("not-a-session", "U#" + upload_id)]) == 0
    assert _files(session["session_id"]) == [uploads.key_for(session["session_id"], upload_id)]


def test_a_delete_s3_refuses_fails_the_batch_for_lambda_to_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    session = create().body
    upload_id = _stored_upload(session)
    key = uploads.key_for(session["session_id"], upload_id)
    monkeypatch.setattr(uploads, "delete_keys", set)  # S3 refuses every key
    with pytest.raises(StorageUnavailableError):
        remove_expired_files([ExpiredRecord(session["session_id"], "U#" + upload_id)])
    assert _files(session["session_id"]) == [key]


def test_the_filter_passes_the_ttls_removals_of_upload_records_only() -> None:
    """The service's own writes and deletes of upload records (issued, stored, a retention pass, an
    erase) reach the stream too, as does every other item's: none passes. Only a removal by the TTL
    process of an upload record does."""
    session = create(body={"retention_hours": 2}).body
    sid, token = session["session_id"], session["session_token"]
    _stored_upload(session)
    call("POST", f"/api/v1/sessions/{sid}/messages", token=token, body={"role": "user", "content": "x"})
    assert call("DELETE", f"/api/v1/sessions/{sid}", token=token).status == 200
    assert stream_records("RemoveExpiredFilesFunction", "ExpiredUploads") == []

    from infra.local import filters

    patterns = stream_filters("RemoveExpiredFilesFunction", "ExpiredUploads")
    by_ttl = _removed_by_ttl(sid, "U#6b1f0c52-7d3e-4a9b-8c1d-2e3f4a5b6c7d")
    assert filters.passes(patterns, by_ttl)
    for changed in ("a message's", "another remover's", "not a removal"):
        record = copy.deepcopy(by_ttl)
        if changed == "a message's":
            record["dynamodb"]["Keys"]["sk"]["S"] = "M#01796515200000000"
        elif changed == "another remover's":
            record["userIdentity"]["principalId"] = "someone.amazonaws.com"
        else:
            record["eventName"] = "MODIFY"
        assert not filters.passes(patterns, record), changed
