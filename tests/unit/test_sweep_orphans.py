"""The orphan sweep against in-process moto."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chatvault.core import clock
from chatvault.dal import erasure, session_lists, sessions
from chatvault.dal.aws.clients import client
from chatvault.logic.rules.access import hash_token
from chatvault.logic.sweep_orphans import sweep_orphans
from chatvault.models.domain import NewSession, Principal
from tests.helpers import BUCKET, store, stored_session

pytestmark = pytest.mark.usefixtures("aws")


def _session(hours: int = 720) -> str:
    return stored_session(hours)


def _put(*keys: str) -> None:
    s3 = boto3.client("s3")
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"data")


def _keys() -> set[str]:
    paginator = boto3.client("s3").get_paginator("list_objects_v2")
    return {o["Key"] for page in paginator.paginate(Bucket=BUCKET) for o in page.get("Contents", [])}


def _later(monkeypatch: pytest.MonkeyPatch, minutes: int = 60) -> None:
    """Run the sweep as if `minutes` had passed since the files were written."""
    moment = clock.now() + timedelta(minutes=minutes)
    monkeypatch.setattr(clock, "now", lambda: moment)


def _forever() -> int:
    return 10**9


def test_orphans_go_and_everything_else_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    live = _session()
    expired = _session(hours=0)
    marked = _session()
    at = clock.now()
    erasure.mark_erasing(marked, Principal(token_hash=hash_token("t")), at, at)
    missing = str(uuid.uuid4())
    orphan_keys = {
        f"uploads/{missing}/a",
        f"uploads/{missing}/b",
        f"uploads/{expired}/a",
        f"uploads/{marked}/a",
    }
    kept = {
        f"uploads/{live}/a",
        f"uploads/{missing.upper()}/a",
        "uploads/not-a-uuid/a",
        f"uploads/{missing}",
        f"other/{missing}/a",
        "readme.txt",
    }
    _put(*orphan_keys, *kept)
    _later(monkeypatch)

    report = sweep_orphans(_forever)

    assert _keys() == kept
    assert report.erasures_finished == 1  # the marked session: finished, its files with it
    assert report.prefixes_scanned == 3
    assert report.prefixes_orphaned == 2
    assert report.prefixes_deleted == 2
    assert report.objects_deleted == 3
    assert sessions.get(marked) is None
    assert report.errors == 0
    assert report.complete


def test_young_folders_are_spared(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(uuid.uuid4())
    _put(f"uploads/{missing}/just-uploaded")
    _later(monkeypatch, minutes=10)  # younger than ORPHAN_MIN_AGE_MINUTES (30)
    assert sweep_orphans(_forever).prefixes_orphaned == 0
    assert _keys() == {f"uploads/{missing}/just-uploaded"}


def test_min_age_is_a_setting(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("ORPHAN_MIN_AGE_MINUTES", "0")
    missing = str(uuid.uuid4())
    _put(f"uploads/{missing}/x")
    _later(settings_env, minutes=1)
    assert sweep_orphans(_forever).objects_deleted == 1
    assert _keys() == set()


def test_dry_run_reports_without_deleting(settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("DRY_RUN", "true")
    missing = str(uuid.uuid4())
    _put(f"uploads/{missing}/x", f"uploads/{missing}/y")
    _later(settings_env)

    report = sweep_orphans(_forever)

    assert report.dry_run
    assert report.prefixes_orphaned == 1
    assert report.prefixes_deleted == 0
    assert report.objects_deleted == 0
    assert _keys() == {f"uploads/{missing}/x", f"uploads/{missing}/y"}


def test_a_session_created_between_the_list_and_the_delete_keeps_its_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = str(uuid.uuid4())
    _put(f"uploads/{sid}/x")
    _later(monkeypatch)
    real = session_lists.live_ids
    calls: list[int] = []

    def create_after_first_lookup(ids: list[str], at: Any) -> set[str]:
        result = real(ids, at)
        if not calls:  # the session appears right after the sweep decided it was missing
            now = clock.now()
            store(
                NewSession(
                    session_id=sid,
                    token_hash="h",
                    owner_id=None,
                    title=None,
                    metadata={},
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                )
            )
        calls.append(1)
        return result

    monkeypatch.setattr(session_lists, "live_ids", create_after_first_lookup)
    report = sweep_orphans(_forever)

    assert report.prefixes_orphaned == 1
    assert report.prefixes_deleted == 0
    assert _keys() == {f"uploads/{sid}/x"}


def test_the_sweep_stops_before_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    _put(*(f"uploads/{uuid.uuid4()}/x" for _ in range(5)))
    _later(monkeypatch)
    report = sweep_orphans(lambda: 1_000)  # 1 s left: less than the safety margin
    assert not report.complete
    assert report.prefixes_scanned == 0
    assert len(_keys()) == 5


@contextmanager
def _aws_calls() -> Iterator[Counter[str]]:
    """The AWS operations the sweep sends, counted where botocore sends them."""
    seen: Counter[str] = Counter()

    def record(event_name: str, **_: Any) -> None:
        seen[event_name.rsplit(".", 1)[-1]] += 1

    from chatvault.dal.audit import AuditItem
    from chatvault.dal.aws import connection
    from chatvault.dal.aws.items import ChatItem, ErasingMark, StoredKey

    models = (ChatItem, StoredKey, ErasingMark, AuditItem)
    hooked = [client("s3"), *(connection.of(model).client for model in models)]
    for each in hooked:
        each.meta.events.register("before-send", record, unique_id="sweep-calls")
    try:
        yield seen
    finally:
        for each in hooked:
            each.meta.events.unregister("before-send", unique_id="sweep-calls")


def _fill(folders: list[str], files: int) -> None:
    s3 = boto3.client("s3")
    for sid in folders:
        for i in range(files):
            s3.put_object(Bucket=BUCKET, Key=f"uploads/{sid}/{i}", Body=b"")


def test_ten_thousand_objects_in_a_thousand_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    live = [_session() for _ in range(10)]
    orphans = [str(uuid.uuid4()) for _ in range(990)]
    _fill(live + orphans, 10)
    _later(monkeypatch)

    with _aws_calls() as calls:
        report = sweep_orphans(_forever)

    assert report.prefixes_scanned == 1000
    assert report.prefixes_deleted == 990
    assert report.objects_deleted == 9900
    assert _keys() == {f"uploads/{sid}/{i}" for sid in live for i in range(10)}
    assert calls["ListObjectsV2"] == 10 + 1  # 1,000 keys a page, then the export objects' one
    assert calls["BatchGetItem"] == 10 + 10  # 100 sessions a lookup: to decide, then to re-check
    assert calls["DeleteObjects"] == 10  # 1,000 keys a call
    assert calls["BatchWriteItem"] == 40  # 990 audit entries, 25 a call


def test_small_folders_share_full_delete_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    orphans = [str(uuid.uuid4()) for _ in range(1200)]
    _fill(orphans, 1)
    _later(monkeypatch)

    with _aws_calls() as calls:
        report = sweep_orphans(_forever)

    assert report.prefixes_deleted == report.objects_deleted == 1200
    assert _keys() == set()
    assert calls["DeleteObjects"] == 2  # 1,000 keys, then the last 200: not one call per 100 folders
    assert calls["BatchGetItem"] == 12 + 12


def test_one_sweep_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep that finds the lease held does nothing; once the holder gives it back, or its lease
    lapses (its Lambda died), the next sweep runs."""
    from chatvault.dal import lease

    orphan = f"uploads/{uuid.uuid4()}/a"
    _put(orphan)
    _later(monkeypatch)
    now = clock.now()
    assert lease.take("sweep", "a running sweep", now, timedelta(minutes=5))

    skipped = sweep_orphans(_forever)
    assert skipped.skipped
    assert skipped.prefixes_scanned == 0
    assert orphan in _keys()
    assert lease.holder_of("sweep") == ("a running sweep", now + timedelta(minutes=5))

    _later(monkeypatch, minutes=66)  # the holder's Lambda is long gone: its lease has lapsed
    report = sweep_orphans(_forever)
    assert not report.skipped
    assert report.prefixes_deleted == 1
    assert orphan not in _keys()
    assert lease.holder_of("sweep") is None  # given back


def test_the_lease_is_only_given_back_by_its_holder() -> None:
    from chatvault.dal import lease

    now = clock.now()
    assert lease.take("job", "first", now, timedelta(seconds=30))
    assert lease.take("job", "first", now, timedelta(seconds=60))  # its holder may renew it
    assert not lease.take("job", "second", now + timedelta(seconds=59), timedelta(seconds=30))
    lease.give_back("job", "second")  # not its lease: nothing happens
    assert lease.holder_of("job") == ("first", now + timedelta(seconds=60))
    assert lease.take("job", "second", now + timedelta(seconds=61), timedelta(seconds=30))  # lapsed
    lease.give_back("job", "first")  # no longer its lease
    assert lease.holder_of("job") == ("second", now + timedelta(seconds=91))
    lease.give_back("job", "second")
    assert lease.holder_of("job") is None
