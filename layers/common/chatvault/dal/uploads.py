"""Uploaded files in S3, under `uploads/{session_id}/{upload_id}`: presigned POSTs, erasing a
session's folder, and the listing the orphan sweep walks. The only module that knows the key layout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatvault.core import snapshot
from chatvault.core.bounds import UUID_PATTERN
from chatvault.core.errors import StorageUnavailableError
from chatvault.core.settings import get_settings
from chatvault.dal.aws.clients import client
from chatvault.dal.aws.retry import storage_errors

UPLOADS_PREFIX = "uploads/"
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
_UPLOAD_KEY = re.compile(f"^uploads/({UUID_PATTERN})/({UUID_PATTERN})$")
_SESSION_FOLDER = re.compile(f"^uploads/({UUID_PATTERN})/")
snapshot.prime(lambda: client("s3"))  # under SnapStart, the S3 client is in the snapshot


def key_for(session_id: str, upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{session_id}/{upload_id}"


def session_of(key: str) -> str | None:
    """The session id of a key inside `uploads/<uuid>/`; None for any other key (never touched)."""
    match = _SESSION_FOLDER.match(key)
    return match.group(1) if match else None


def presigned_post(key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
    """A browser-ready form: the policy fixes the key, the content type and the size range.
    Signing is local (no AWS call)."""
    # boto3 adds the bucket and key conditions itself
    conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
    post: dict[str, Any] = client("s3").generate_presigned_post(
        Bucket=get_settings().uploads_bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=conditions,
        ExpiresIn=expires_in,
    )
    return post


def upload_of(key: str) -> tuple[str, str] | None:
    """(session id, upload id) of a key this service issues forms for, `uploads/<uuid>/<uuid>`."""
    match = _UPLOAD_KEY.match(key)
    return (match.group(1), match.group(2)) if match else None


def presigned_get(key: str, expires_in: int, content_type: str | None = None) -> str:
    """A link that downloads the object for `expires_in` seconds, as an attachment (no file name:
    none is stored). Signing is local (no AWS call)."""
    params: dict[str, Any] = {
        "Bucket": get_settings().uploads_bucket,
        "Key": key,
        "ResponseContentDisposition": "attachment",
    }
    if content_type:
        params["ResponseContentType"] = content_type
    url: str = client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
    return url


@dataclass(frozen=True)
class ObjectFacts:
    size: int
    content_type: str


# HeadObject's answers for a key with no object: 404, or 403 to a role that may not list the bucket
# (S3 will not tell it whether the key exists). ConfirmUploadFunction's role has s3:GetObject on
# uploads/* and no s3:ListBucket, so a missing object reaches it as 403. Its other source, a role
# without s3:GetObject, is a misconfiguration the least-privilege test rules out.
_NO_OBJECT = frozenset({"404", "NoSuchKey", "NotFound", "403", "Forbidden", "AccessDenied"})


@storage_errors
def head(key: str) -> ObjectFacts | None:
    """The object's size and Content-Type (HeadObject); None when there is no such object, whether
    S3 says so (404) or, to a role that may not list the bucket, refuses to say (403)."""
    s3 = client("s3")
    try:
        response = s3.head_object(Bucket=get_settings().uploads_bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _NO_OBJECT:
            return None
        raise
    return ObjectFacts(int(response["ContentLength"]), str(response.get("ContentType") or ""))


@storage_errors
def delete_key(key: str) -> None:
    client("s3").delete_object(Bucket=get_settings().uploads_bucket, Key=key)


@storage_errors
def put(key: str, body: bytes, content_type: str) -> None:
    client("s3").put_object(
        Bucket=get_settings().uploads_bucket, Key=key, Body=body, ContentType=content_type
    )


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime


@storage_errors
def objects(prefix: str = UPLOADS_PREFIX) -> Iterator[StoredObject]:
    """Every object under a prefix, in key order (so one session's files arrive together), 1,000 a call."""
    paginator = client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=get_settings().uploads_bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            yield StoredObject(entry["Key"], entry["LastModified"])


@storage_errors
def delete_keys(keys: list[str]) -> set[str]:
    """Delete keys, 1,000 a call (keys of many folders share a call); returns the keys S3 refused."""
    bucket = get_settings().uploads_bucket
    refused: set[str] = set()
    for start in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start : start + DELETE_BATCH]
        response = client("s3").delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
        )
        refused.update(error["Key"] for error in response.get("Errors", []))
    return refused


def erase_session_files(session_id: str) -> int:
    """Delete every object under the session's folder; returns how many there were."""
    keys = [stored.key for stored in objects(f"{UPLOADS_PREFIX}{session_id}/")]
    if keys and delete_keys(keys):
        raise StorageUnavailableError("Some files could not be deleted yet; retry the delete.")
    return len(keys)
