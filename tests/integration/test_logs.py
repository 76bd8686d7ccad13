"""Nothing sensitive in logs: a full scenario through every function, every log line captured, and
no message content, token, file name, IP address or export key among them."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import boto3
import pytest

from chatvault.core import clock
from chatvault.core.settings import get_settings
from chatvault.logic.sweep_orphans import sweep_orphans
from tests.helpers import call, create, declare_upload

pytestmark = pytest.mark.usefixtures("aws")

CONTENT = "I am scared to go home tonight"
TITLE = "Crisis chat with Maria"
FILENAME = "restraining-order.pdf"
IP = "203.0.113.199"
METADATA_VALUE = "case-4471-maria"


def test_a_full_scenario_logs_nothing_sensitive(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, settings_env: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    s = create(body={"title": TITLE, "metadata": {"case": METADATA_VALUE}}, source_ip=IP).body
    sid, token = s["session_id"], s["session_token"]
    base = f"/api/v1/sessions/{sid}"
    call("GET", base, token=token, source_ip=IP)
    call("PATCH", base, token=token, body={"title": TITLE + " (2)"}, source_ip=IP)
    call(
        "POST",
        f"{base}/messages",
        token=token,
        source_ip=IP,
        body={
            "role": "user",
            "content": CONTENT,
            "message_id": str(uuid.uuid4()),
            "metadata": {"attributes": {"case": METADATA_VALUE}, "error_message": CONTENT},
        },
    )
    call(
        "POST",
        f"{base}/messages",
        token=token,
        source_ip=IP,
        body={"role": "user", "content": CONTENT * 2000},
    )
    # the chat: an exchange, a model failure (its log line), and its retry
    call("POST", f"{base}/chat", token=token, source_ip=IP, body={"content": CONTENT})
    failing = {"content": "/stand-in error", "message_id": str(uuid.uuid4())}
    assert call("POST", f"{base}/chat", token=token, source_ip=IP, body=failing).status == 502
    assert call("POST", f"{base}/chat", token=token, source_ip=IP, body=failing).status == 201
    call("GET", f"{base}/messages", token=token, query="order=desc", source_ip=IP)
    declare_upload(base, FILENAME, "application/pdf", 100, token=token, source_ip=IP)
    declare_upload(base, FILENAME, "not a type", 100, token=token, source_ip=IP)  # 422 echoes no input
    call(
        "POST",
        f"{base}/messages",
        token="wrong-" + token,
        source_ip=IP,
        body={"role": "user", "content": CONTENT},
    )
    call("POST", "/api/v1/sessions", raw_body='{"title": "' + TITLE, source_ip=IP)
    for _ in range(12):
        call("POST", "/api/v1/sessions", body={"title": TITLE}, source_ip=IP)  # ends in 429s
    boto3.client("s3").put_object(
        Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{sid}/{FILENAME}", Body=b"x"
    )
    # an export answered as a link: the answer carries the sealed object's key, which no line may hold
    settings_env.setenv("EXPORT_INLINE_BYTES", "1")
    get_settings.cache_clear()
    link = call("GET", f"{base}/export", token=token, source_ip=IP).body
    export_key = link["encryption"]["key"]
    settings_env.delenv("EXPORT_INLINE_BYTES")
    get_settings.cache_clear()
    call("DELETE", base, token=token, source_ip=IP)
    orphan = str(uuid.uuid4())
    boto3.client("s3").put_object(
        Bucket="chatvault-local-uploadsbucket", Key=f"uploads/{orphan}/{FILENAME}", Body=b"x"
    )
    later = clock.now() + timedelta(hours=1)
    settings_env.setattr(clock, "now", lambda: later)
    sweep_orphans(lambda: 10**9)

    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)

    assert "session exported" in logged
    assert "session erased" in logged
    assert "orphan folder deleted" in logged
    for secret in (CONTENT, TITLE, FILENAME, "restraining-order", token, IP, METADATA_VALUE, export_key):
        assert secret not in logged, secret
