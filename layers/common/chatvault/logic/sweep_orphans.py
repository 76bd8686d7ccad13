"""The orphan sweep (scheduled): finish deletes whose Lambda died, then delete `uploads/<uuid>/`
folders whose session is missing, expired or being erased, once the folder's newest object is older
than ORPHAN_MIN_AGE_MINUTES.

- One pass over the listing (1,000 keys a call, in key order so a folder's files arrive together);
  keys outside `uploads/<uuid>/` are never touched.
- Sessions are looked up 100 a call (strongly consistent). Orphans wait until their keys fill a
  DeleteObjects call (1,000 keys, whatever the folder sizes), are looked up again just before it, so
  a session created meanwhile keeps its files, and are audited after it. DRY_RUN=true reports
  without deleting.
- Before each batch the remaining Lambda time is checked: the sweep stops cleanly and leaves the rest
  to the next run.
- Export objects (`exports/<uuid>/`, logic/export_session.py) older than EXPORT_MAX_AGE_MINUTES are
  deleted, whatever their session: with a run every 30 minutes, none outlives its hour.
- One sweep at a time: a run first takes the `sweep` lease (dal/lease.py) until its Lambda's deadline;
  a run that finds it held (a slow run overlapping the next schedule, a manual invoke) does nothing
  and says so (`skipped`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from chatvault.core import clock
from chatvault.core.observability import logger, metrics
from chatvault.core.settings import get_settings
from chatvault.dal import audit, erasure, exports, lease, session_lists, uploads
from chatvault.logic.rules.erase import finish_erase
from chatvault.models.domain import AuditEntry

LOOKUP_BATCH = 100
SAFETY_MS = 15_000


@dataclass
class Folder:
    session_id: str
    keys: list[str] = field(default_factory=list)
    newest: datetime | None = None


class SweepReport(BaseModel):
    erasures_finished: int = 0
    prefixes_scanned: int = 0
    prefixes_orphaned: int = 0
    prefixes_deleted: int = 0
    objects_deleted: int = 0
    errors: int = 0
    exports_deleted: int = 0
    dry_run: bool = False
    complete: bool = True
    skipped: bool = False  # another sweep held the lease: this one did nothing


def folders(objects: Iterable[uploads.StoredObject]) -> Iterator[Folder]:
    """Group a key-ordered listing into session folders; keys outside `uploads/<uuid>/` are dropped."""
    current: Folder | None = None
    for stored in objects:
        session_id = uploads.session_of(stored.key)
        if session_id is None:
            continue
        if current is None or current.session_id != session_id:
            if current is not None:
                yield current
            current = Folder(session_id)
        current.keys.append(stored.key)
        if current.newest is None or stored.last_modified > current.newest:
            current.newest = stored.last_modified
    if current is not None:
        yield current


def _batches(items: Iterable[Folder], size: int) -> Iterator[list[Folder]]:
    batch: list[Folder] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


LEASE = "sweep"
SWEEP_ACTOR = "sweep"  # the sweep's reports are audited under `c#sweep`


def sweep_orphans(remaining_ms: Callable[[], int]) -> SweepReport:
    """Sweep once, unless another sweep holds the lease."""
    holder = str(uuid.uuid4())
    # held until this Lambda is stopped at the latest; a run that dies leaves it to lapse then
    if not lease.take(LEASE, holder, clock.now(), timedelta(milliseconds=remaining_ms())):
        logger.info("another sweep is running; this one does nothing")
        metrics.add_metric(name="SweepsSkipped", unit="Count", value=1)
        return SweepReport(dry_run=get_settings().dry_run, skipped=True)
    try:
        return _sweep(remaining_ms)
    finally:
        lease.give_back(LEASE, holder)


def _sweep(remaining_ms: Callable[[], int]) -> SweepReport:
    settings = get_settings()
    report = SweepReport(dry_run=settings.dry_run)
    cutoff = clock.now() - timedelta(minutes=settings.orphan_min_age_minutes)

    for session_id in erasure.stale_erasures(cutoff):
        if remaining_ms() < SAFETY_MS:
            report.complete = False
            break
        if settings.dry_run:
            logger.info("interrupted delete found (dry run)", extra={"session_id": session_id})
            continue
        erased = finish_erase(session_id, None, event="interrupted_delete_finished")
        report.erasures_finished += 1
        logger.info(
            "interrupted delete finished",
            extra={"session_id": session_id, "items": erased.items, "files": erased.files},
        )

    pending: list[Folder] = []  # orphans waiting for a full DeleteObjects call
    for batch in _batches(folders(uploads.objects()), LOOKUP_BATCH):
        if not report.complete or remaining_ms() < SAFETY_MS:
            report.complete = False
            logger.warning("sweep stopped before the deadline; the next run continues", extra=_counts(report))
            break
        report.prefixes_scanned += len(batch)
        live = session_lists.live_ids([f.session_id for f in batch], clock.now())
        orphans = [
            f for f in batch if f.session_id not in live and f.newest is not None and f.newest < cutoff
        ]
        report.prefixes_orphaned += len(orphans)
        if settings.dry_run:
            for folder in orphans:
                logger.info(
                    "orphan folder found (dry run)",
                    extra={"session_id": folder.session_id, "objects": len(folder.keys)},
                )
            continue
        pending.extend(orphans)
        if sum(len(f.keys) for f in pending) >= uploads.DELETE_BATCH:
            _delete(pending, report)
            pending = []
    if pending:  # fewer than 1,000 keys: well inside the safety margin, also when stopping early
        _delete(pending, report)
    if report.complete and remaining_ms() >= SAFETY_MS:
        _delete_old_exports(report, settings.export_max_age_minutes, settings.dry_run)

    for name, value in _counts(report).items():
        metrics.add_metric(name=name, unit="Count", value=value)
    # 1 when the run stopped at its deadline with work left (an alarm watches it stay so)
    metrics.add_metric(name="SweepsIncomplete", unit="Count", value=0 if report.complete else 1)
    # the run's report, for operators (`make admin ARGS=sweeps`): one audit entry a run
    audit.record(
        AuditEntry(
            event="sweep_finished",
            at=clock.now(),
            actor=SWEEP_ACTOR,
            details={**_counts(report), "complete": int(report.complete), "dry_run": int(report.dry_run)},
        )
    )
    logger.info(
        "sweep finished", extra={**_counts(report), "complete": report.complete, "dry_run": report.dry_run}
    )
    return report


def _delete(candidates: list[Folder], report: SweepReport) -> None:
    """Look the candidates' sessions up again, then delete the orphans' keys in shared DeleteObjects
    calls and audit each folder; one log line per folder, ids and counts only."""
    revived = session_lists.live_ids([f.session_id for f in candidates], clock.now())
    orphans = [f for f in candidates if f.session_id not in revived]
    if not orphans:
        return
    try:
        refused = uploads.delete_keys([key for folder in orphans for key in folder.keys])
    except Exception:
        report.errors += len(orphans)
        logger.exception("orphan folders not deleted", extra={"folders": len(orphans)})
        return
    for folder in orphans:
        failed = sum(1 for key in folder.keys if key in refused)
        if failed:
            report.errors += 1
            logger.error(
                "orphan folder partly deleted", extra={"session_id": folder.session_id, "failed": failed}
            )
        else:
            report.prefixes_deleted += 1
        report.objects_deleted += len(folder.keys) - failed
        logger.info(
            "orphan folder deleted",
            extra={"session_id": folder.session_id, "objects": len(folder.keys) - failed},
        )
    at = clock.now()
    audit.record_many(
        [
            AuditEntry(
                session_id=folder.session_id,
                event="orphan_files_swept",
                at=at,
                details={"objects": sum(1 for key in folder.keys if key not in refused)},
            )
            for folder in orphans
        ]
    )


def _delete_old_exports(report: SweepReport, max_age_minutes: int, dry_run: bool) -> None:
    old = exports.stale(clock.now() - timedelta(minutes=max_age_minutes))
    if dry_run or not old:
        if old:
            logger.info("old export objects found (dry run)", extra={"objects": len(old)})
        return
    refused = uploads.delete_keys(old)
    report.exports_deleted += len(old) - len(refused)
    report.errors += len(refused)
    logger.info("old export objects deleted", extra={"objects": len(old) - len(refused)})


def _counts(report: SweepReport) -> dict[str, int]:
    return {
        "ErasuresFinished": report.erasures_finished,
        "PrefixesScanned": report.prefixes_scanned,
        "PrefixesOrphaned": report.prefixes_orphaned,
        "PrefixesDeleted": report.prefixes_deleted,
        "ObjectsDeleted": report.objects_deleted,
        "Errors": report.errors,
        "ExportsDeleted": report.exports_deleted,
    }
