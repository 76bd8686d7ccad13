"""Uploads and the sweep against the local stack: a real multipart POST through the returned form,
the panic button, and `make invoke` of the sweep with ORPHAN_MIN_AGE_MINUTES=0."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import requests

from tests.helpers import BUCKET
from tests.integration.local_stack import ROOT, LocalStack

pytestmark = pytest.mark.http


def _keys(stack: LocalStack) -> set[str]:
    return {o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_upload_through_the_form_then_the_panic_button(stack: LocalStack) -> None:
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    url, auth = (
        f"{stack.api}/api/v1/sessions/{created['session_id']}",
        {"X-Session-Token": created["session_token"]},
    )
    keys = []
    for name in ("scan.png", "form.pdf"):
        upload = requests.post(
            f"{url}/uploads",
            headers=auth,
            timeout=10,
            json={"filename": name, "content_type": "image/png", "size": 11},
        ).json()
        response = requests.post(
            upload["url"],
            data=upload["fields"],
            files={"file": (name, b"hello world", "image/png")},
            timeout=10,
        )
        assert response.status_code in (200, 204), response.text
        keys.append(upload["key"])
    assert set(keys) <= _keys(stack)

    receipt = requests.delete(url, headers=auth, timeout=30).json()

    assert receipt["erased"]["uploads"] == 2
    assert not [k for k in _keys(stack) if created["session_id"] in k]
    # no noncurrent version and no delete marker names the session either: deleted means gone
    versions = stack.client("s3").list_object_versions(
        Bucket=BUCKET, Prefix=f"uploads/{created['session_id']}/"
    )
    assert not versions.get("Versions")
    assert not versions.get("DeleteMarkers")
    assert stack.client("s3").get_bucket_versioning(Bucket=BUCKET).get("Status") is None


def test_only_the_allowed_content_types_get_a_form(stack: LocalStack) -> None:
    created = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    url, auth = (
        f"{stack.api}/api/v1/sessions/{created['session_id']}/uploads",
        {"X-Session-Token": created["session_token"]},
    )
    for refused in ("text/html", "application/x-msdownload", "image/svg+xml"):
        reply = requests.post(
            url, headers=auth, timeout=10, json={"filename": "a", "content_type": refused, "size": 5}
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["details"][0]["field"] == "body.content_type"
    for allowed in ("image/png", "image/jpeg", "image/webp", "application/pdf", "text/plain"):
        reply = requests.post(
            url, headers=auth, timeout=10, json={"filename": "a", "content_type": allowed, "size": 5}
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["fields"]["Content-Type"] == allowed


def test_sweep_by_make_invoke_removes_only_orphans(stack: LocalStack) -> None:
    live = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()["session_id"]
    orphan = str(uuid.uuid4())
    planted = {
        f"uploads/{orphan}/a": False,
        f"uploads/{orphan}/b": False,
        f"uploads/{live}/a": True,
        "uploads/not-a-session/a": True,
        f"elsewhere/{orphan}/a": True,
    }
    s3 = stack.client("s3")
    for key in planted:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.local.invoke",
            "SweepOrphansFunction",
            "--event",
            "tests/events/sweep_orphans.json",
            "--env-vars",
            "tests/events/sweep_env.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "MOTO_PORT": str(stack.moto_port)},
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["prefixes_deleted"] >= 1
    assert report["objects_deleted"] >= 2
    remaining = _keys(stack)
    assert {k for k, keep in planted.items() if keep} <= remaining
    assert not {k for k, keep in planted.items() if not keep} & remaining
    assert '"session_id"' in result.stderr
    assert "orphan folder deleted" in result.stderr
    assert "/a" not in "".join(line for line in result.stderr.splitlines() if "orphan folder deleted" in line)
