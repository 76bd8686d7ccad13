"""The operator command (`make admin`, infra/admin.py) against the local stack: a session's audit
trail by its id, an erase by id for a data-subject request (audited as such), the sweep's reports,
sealing the sessions written before conversations had keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import requests

from chatvault.core import seal
from tests.helpers import partition
from tests.integration.local_stack import LocalStack, table_items
from tests.integration.test_http_sealed import _held_keys

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    pythonpath = {"PYTHONPATH": str(ROOT / "layers/common")}
    return _command([sys.executable, "-m", module, *args], state=state, **pythonpath, **env)


def _command(argv: list[str], *, state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command run from the repository's root with only PATH, the stack's state file and `env`."""
    return subprocess.run(
        argv,
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "CHATVAULT_DEV_STATE": str(state), **env},
    )


def _admin(stack: LocalStack, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    done = _run("infra.admin", *args, state=stack.state)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_audit_trail_and_an_erase_by_id(stack: LocalStack) -> None:
    base = f"{stack.api}/api/v1/sessions"
    session = requests.post(base, json={"title": "asked to be forgotten"}, timeout=10).json()
    sid, headers = session["session_id"], {"X-Session-Token": session["session_token"]}
    url = f"{base}/{sid}"
    assert requests.post(
        f"{url}/messages", json={"role": "user", "content": "hi"}, headers=headers, timeout=10
    ).ok

    code, trail, _ = _admin(stack, "audit", sid)
    assert code == 0
    assert [entry["event"] for entry in trail] == ["session_created"]

    code, (receipt,), _ = _admin(stack, "erase", sid)
    assert code == 0
    assert (receipt["session_id"], receipt["messages"], receipt["uploads"]) == (sid, 1, 0)
    assert requests.get(url, headers=headers, timeout=10).status_code == 404
    assert not [item for item in table_items(stack) if item.get("pk", {}).get("S") == sid]

    code, trail, _ = _admin(stack, "audit", sid)
    erased = trail[-1]
    assert erased["event"] == "erased_by_operator"
    assert erased["actor"] == "operator"
    assert erased["details"] == {"messages": 1, "uploads": 0, "reason": "data_subject_request"}

    code, out, err = _admin(stack, "erase", sid)  # gone: nothing to erase
    assert (code, out) == (4, [])
    assert f"make admin: no session {sid} in the local stack" in err


def test_an_unknown_or_malformed_id_is_one_line_that_says_so(stack: LocalStack) -> None:
    unknown = str(uuid.uuid4())
    code, out, err = _admin(stack, "audit", unknown)
    assert (code, out) == (4, [])
    (line,) = err.strip().splitlines()
    assert line.startswith(f"make admin: no audit trail for session {unknown} in the local stack")
    for command in ("audit", "erase"):
        code, out, err = _admin(stack, command, "not-an-id")
        assert (code, out) == (2, [])
        assert "not a session id (a UUID): 'not-an-id'" in err
        assert "Traceback" not in err
    # an id in another case or with spaces names the same session, as in the API's paths
    session = requests.post(f"{stack.api}/api/v1/sessions", json={}, timeout=10).json()
    code, trail, _ = _admin(stack, "audit", f" {session['session_id'].upper()} ")
    assert (code, [entry["event"] for entry in trail]) == (0, ["session_created"])


def test_through_make_the_scripts_line_comes_first_and_make_exits_2(stack: LocalStack) -> None:
    """make exits 2 whenever its recipe fails (the README says so): the script's own line is there,
    and make's own line after it carries the script's code."""
    unknown = str(uuid.uuid4())
    done = _command(["make", "--no-print-directory", "admin", f"ARGS=audit {unknown}"], state=stack.state)
    assert done.returncode == 2
    assert done.stdout == ""
    script, make = done.stderr.strip().splitlines()
    assert script.startswith(f"make admin: no audit trail for session {unknown}")
    assert make.startswith("make: *** [Makefile:")
    assert make.endswith("admin] Error 4")


def test_run_directly_it_needs_no_pythonpath_and_its_code_is_the_exit_status(stack: LocalStack) -> None:
    """What the README offers for the script's own code: `.venv/bin/python -m infra.admin …`."""
    # no PYTHONPATH
    done = _command([sys.executable, "-m", "infra.admin", "audit", str(uuid.uuid4())], state=stack.state)
    assert done.returncode == 4, done.stderr
    assert "no audit trail" in done.stderr


def test_the_sweeps_last_reports(stack: LocalStack) -> None:
    event = ("--event", "tests/events/sweep_orphans.json")
    invoked = _run("infra.local.invoke", "SweepOrphansFunction", *event, state=stack.state)
    assert invoked.returncode == 0, invoked.stderr
    code, reports, _ = _admin(stack, "sweeps", "--last", "3")
    assert code == 0
    assert 1 <= len(reports) <= 3
    newest = reports[0]
    assert set(newest) >= {"at", "PrefixesScanned", "ObjectsDeleted", "Errors", "complete", "dry_run"}
    assert newest["complete"] == 1
    assert [r["at"] for r in reports] == sorted((r["at"] for r in reports), reverse=True)


def test_without_a_stack_it_says_so(tmp_path: Path) -> None:
    from tests.integration.local_stack import free_port

    done = _run("infra.admin", "sweeps", state=tmp_path / "none.json", MOTO_PORT=str(free_port()))
    assert done.returncode == 3
    assert "make dev" in done.stderr


def test_a_report_count_outside_its_range_is_refused(stack: LocalStack) -> None:
    for last in ("0", "-1", "1001"):
        code, out, err = _admin(stack, "sweeps", "--last", last)
        assert (code, out) == (2, [])
        assert "--last must be between 1 and 1000" in err


def test_restore_copy_brings_back_a_lost_conversation_from_a_restored_table(stack: LocalStack) -> None:
    """The runbook's step 3: a conversation deleted from the live table by mistake comes back from the
    restored table, and reads as before; nothing live is overwritten; the restored table is refused
    when it is the live one."""

    live, restored = "chatvault-local-SessionsTable", f"chatvault-restored-{uuid.uuid4().hex[:8]}"
    ddb = stack.client("dynamodb")
    base = f"{stack.api}/api/v1/sessions"
    session = requests.post(base, json={"title": "kept"}, timeout=10).json()
    sid, headers = session["session_id"], {"X-Session-Token": session["session_token"]}
    for content in ("one", "two"):
        assert requests.post(
            f"{base}/{sid}/messages", json={"role": "user", "content": content}, headers=headers, timeout=10
        ).ok
    before = requests.get(f"{base}/{sid}/messages", headers=headers, timeout=10).json()

    ddb.create_table(  # a point-in-time restore: a new table, the live one's items
        TableName=restored,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for item in partition(sid, live, ddb):
            ddb.put_item(TableName=restored, Item=item)
        lost = partition(sid, live, ddb)
        for item in lost:  # deleted by mistake
            ddb.delete_item(TableName=live, Key={"pk": item["pk"], "sk": item["sk"]})
        assert requests.get(f"{base}/{sid}", headers=headers, timeout=10).status_code == 404

        code, (dry,), _ = _admin(stack, "restore-copy", "--table", restored, "--session", sid, "--dry-run")
        assert code == 0
        assert dry == {
            "sessions": 1,
            "copied_sessions": 1,
            "copied_items": len(lost),
            "present": 0,
            "skipped_erased": 0,
            "skipped_expired": 0,
            "skipped_unsafe": 0,
            "legacy": 0,
            "dry_run": True,
        }
        assert partition(sid, live, ddb) == []

        code, (report,), _ = _admin(stack, "restore-copy", "--table", restored, "--session", sid)
        assert (code, report["copied_items"], report["dry_run"]) == (0, len(lost), False)
        assert requests.get(f"{base}/{sid}/messages", headers=headers, timeout=10).json() == before
        assert requests.get(f"{base}/{sid}", headers=headers, timeout=10).json()["title"] == "kept"

        code, (again,), _ = _admin(stack, "restore-copy", "--table", restored)  # the whole table
        assert (code, again["copied_items"], again["present"]) == (0, 0, len(lost))

        for args in (("--table", live), ("--table", restored, "--session", "not-an-id"), ()):
            code, out, err = _admin(stack, "restore-copy", *args)
            assert (code, out) == (2, []), err
            assert "Traceback" not in err
        assert "is the live sessions table" in _admin(stack, "restore-copy", "--table", live)[2]
        code, out, err = _admin(stack, "restore-copy", "--table", "chatvault-no-such-table")
        assert (code, out) == (2, [])
        assert "no such table" in err
    finally:
        ddb.delete_table(TableName=restored)  # the runbook's last step; other tests scan every table


SESSIONS_TABLE = "chatvault-local-SessionsTable"
KEYS_TABLE = "chatvault-local-KeysTable"
PLAINTEXT = ("preview", "title", "metadata", "content", "meta")


def _partition(stack: LocalStack, session_id: str) -> list[dict[str, Any]]:
    return partition(session_id, SESSIONS_TABLE, stack.client("dynamodb"))


def _make_legacy(stack: LocalStack, session_id: str) -> None:
    """The session as it was written before conversations had keys: its items' sealed values opened
    (under the key the deployment holds for it) and stored as plaintext, its key gone."""
    ddb = stack.client("dynamodb")
    key = _held_keys(stack)[session_id]
    for item in _partition(stack, session_id):
        sk = item["sk"]["S"]
        for name in ("key_id", "key_expires_at"):
            item.pop(name, None)
        for sealed, plain in (("sealed_preview", "preview"), ("sealed_title", "title")):
            if sealed in item:
                where = seal.place(session_id, sk, sealed)
                item[plain] = {"S": seal.unseal(key, where, item.pop(sealed)["B"]).decode()}
        if "sealed_metadata" in item:
            where = seal.place(session_id, sk, "sealed_metadata")
            metadata = json.loads(seal.unseal(key, where, item.pop("sealed_metadata")["B"]))
            item["metadata"] = {"M": {k: {"S": v} for k, v in metadata.items()}}
        if "sealed" in item:
            meta, _, content = seal.unseal(
                key, seal.place(session_id, sk, "sealed"), item.pop("sealed")["B"]
            ).partition(b"\n")
            item["content"] = {"S": content.decode()}
            if meta:
                item["meta"] = {"S": meta.decode()}
        ddb.put_item(TableName=SESSIONS_TABLE, Item=item)
    ddb.delete_item(TableName=KEYS_TABLE, Key={"pk": {"S": session_id}})


def _service_reads(url: str, headers: dict[str, str]) -> dict[str, Any]:
    got = requests.get(url, headers=headers, timeout=10)
    listed = requests.get(f"{url}/messages", headers=headers, timeout=10)
    exported = requests.get(f"{url}/export", headers=headers, timeout=10)
    assert (got.status_code, listed.status_code, exported.status_code) == (200, 200, 200)
    export = {k: v for k, v in exported.json().items() if k != "exported_at"}
    return {"session": got.json(), "messages": listed.json(), "export": export}


def test_seal_legacy_encrypts_a_legacy_session_in_place(stack: LocalStack) -> None:
    marker = f"legacy-{uuid.uuid4().hex[:12]}"
    base = f"{stack.api}/api/v1/sessions"
    body = {"title": f"title {marker}", "metadata": {"topic": f"topic {marker}"}}
    session = requests.post(base, json=body, timeout=10).json()
    sid, headers = session["session_id"], {"X-Session-Token": session["session_token"]}
    url = f"{base}/{sid}"
    for n in range(2):
        message = {"role": "user", "content": f"words {marker} {n}", "metadata": {"model": marker}}
        assert requests.post(f"{url}/messages", json=message, headers=headers, timeout=10).status_code == 201
    _make_legacy(stack, sid)
    legacy = _partition(stack, sid)
    assert sum(name in item for item in legacy for name in PLAINTEXT) == 1 + 2 + 2 * 2
    before = _service_reads(url, headers)
    assert before["session"]["title"] == f"title {marker}"
    assert [m["content"] for m in before["messages"]["items"]] == [f"words {marker} 0", f"words {marker} 1"]

    code, (dry,), _ = _admin(stack, "seal-legacy", "--dry-run")
    assert code == 0
    assert dry["dry_run"] is True
    assert dry["sealed"] >= 1
    assert _partition(stack, sid) == legacy  # a dry run writes nothing

    code, (report,), err = _admin(stack, "seal-legacy")
    assert code == 0, err
    assert report["dry_run"] is False
    assert report["sealed"] >= 1
    assert report["items_sealed"] >= 1 + 1 + 2  # the session item, the profile, the messages
    assert report["sessions"] == report["legacy"] + report["already_keyed"]
    sealed = _partition(stack, sid)
    assert len(sealed) == len(legacy)
    for item in sealed:
        assert not [name for name in PLAINTEXT if name in item], item
        assert marker.encode() not in json.dumps(item, default=repr).encode()
        for value in item.values():
            assert marker.encode() not in value.get("B", b"")
    assert sid in _held_keys(stack)  # its own key, in the keys table
    assert _service_reads(url, headers) == before  # the service reads it as it did

    code, (again,), _ = _admin(stack, "seal-legacy")  # safe to run twice: nothing left to seal
    assert code == 0
    assert (again["sealed"], again["resumed"], again["items_sealed"]) == (0, 0, 0)
    assert _partition(stack, sid) == sealed
