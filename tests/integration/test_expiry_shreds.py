"""Expiry shreds (issue 23): a conversation past its expiry has no readable key, so nothing of it is
served, even while DynamoDB's TTL has not yet removed its items (often days later). In-process, the
clock moved past the session's expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chatvault.core import clock
from chatvault.dal import conversation_keys
from tests.helpers import assert_error, call, create

pytestmark = pytest.mark.usefixtures("aws")


def test_a_session_past_its_expiry_has_no_readable_key_and_reads_as_gone(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("RETENTION_HOURS", "1")
    session = create(body={"title": "soon gone"}).body
    sid, token = session["session_id"], session["session_token"]
    base = f"/api/v1/sessions/{sid}"
    assert call("POST", f"{base}/messages", token=token, body={"role": "user", "content": "hi"}).status == 201
    expires = datetime.fromisoformat(call("GET", base, token=token).body["expires_at"])
    assert conversation_keys.read(sid, clock.now()) is not None

    later = expires + timedelta(seconds=1)
    settings_env.setattr(clock, "now", lambda: later)
    assert conversation_keys.read(sid, later) is None  # held in memory: dropped past its TTL
    conversation_keys.forget()
    assert conversation_keys.read(sid, later) is None  # stored: past its TTL, not yet removed
    for path in (base, f"{base}/messages", f"{base}/export"):
        assert_error(call("GET", path, token=token), 404, "session_not_found")
    refused = call("POST", f"{base}/messages", token=token, body={"role": "user", "content": "again"})
    assert_error(refused, 404, "session_not_found")
