"""Encrypt a deployed table's legacy sessions in place (the operator's `make admin ARGS="seal-legacy"`;
README, "Operator command"): each session written before conversations had keys gets its own key,
and everything a person wrote in it is replaced by its sealed value (dal/aws/items.py, "Sealing a legacy
session in place"; the storage side is dal/seal_legacy.py).

For each session item without a key: step 1 writes its key and names it on the session item in one
transaction (from then on every writer seals what it writes to the session, and every reader opens
it); step 2 replaces each of its items' plaintext by the sealed value, one conditional write an item.
A session keyed by an earlier run that was interrupted (its items still hold plaintext) gets step 2
under the key its session item names.

- Safe to interrupt: every item reads whole at every moment (a reader takes a sealed attribute when
  there is one, else the plaintext), before step 1, between the two steps, and between any two of
  step 2's writes; a rerun finishes what is left.
- Safe to run twice, or two at once: step 1 is conditioned on the session having no key (the second
  transaction writes nothing, not even its key item), step 2's writes on the plaintext still being
  there; a second run finds nothing left and writes nothing.
- Safe while the service is live: an append or PATCH that lands before step 1 is plaintext (and is
  sealed by step 2), one after it is sealed by its writer (refused under the old state, it retries
  under the key); step 2 never overwrites what a writer sealed, and never writes an item back that an
  erase deleted.

Left as they are: sessions being erased (their erase removes them whole; the mark has destroyed any
key they had) and sessions past their expiry (no longer readable; DynamoDB's TTL removes them within
days, and giving them a key would only add a key item to remove), and items holding plaintext
without a session item (an expired session's leftovers, whose TTL falls soon, or an erase the sweep
finishes). Each is counted.

Cost: one Scan of the table (its size in read units), then per legacy session one transaction, and
one write per item holding plaintext (dal/seal_legacy.py counts the round trips)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from chatvault.core import clock
from chatvault.core.errors import StorageUnavailableError
from chatvault.dal import seal_legacy as store
from chatvault.dal.session_items import epoch

SESSION_WORKERS = 4  # sessions at a time
# item writes at a time: with the sessions' own requests, within the client's 32 connections
ITEM_WORKERS = 16
KEY_ATTEMPTS = 5  # step 1 tried again after a refusal that leaves the session legacy (its expiry moved)


class SealLegacy(BaseModel):
    sessions: int = 0  # session items seen
    legacy: int = 0  # of them, without a key when seen
    already_keyed: int = 0  # of them, with a key when seen (created with one, or sealed before)
    sealed: int = 0  # legacy sessions given their key and sealed by this run
    resumed: int = 0  # keyed sessions still holding plaintext (an interrupted run): finished
    items_sealed: int = 0  # items whose plaintext this run replaced by sealed values
    skipped_erased: int = 0  # being erased, or their key gone: left to the erase
    skipped_expired: int = 0  # past their expiry: left to their TTL
    orphaned: int = 0  # partitions holding plaintext but no session item: left to their TTL or the sweep
    dry_run: bool = False  # counted what it would do; wrote nothing


Outcome = Literal["sealed", "resumed", "erased", "expired", "orphaned"]


@dataclass(frozen=True)
class _Done:
    outcome: Outcome
    items: int = 0


def seal_legacy(dry_run: bool = False) -> SealLegacy:
    found = store.survey()
    report = SealLegacy(
        sessions=found.sessions,
        legacy=found.sessions - found.keyed,
        already_keyed=found.keyed,
        dry_run=dry_run,
    )
    work = list(dict.fromkeys([*found.heads, *found.plaintext]))
    with ThreadPoolExecutor(ITEM_WORKERS, thread_name_prefix="seal-item") as items:

        def one(session_id: str) -> _Done:
            head = found.heads.get(session_id)
            return _session(session_id, head, found.plaintext[session_id], dry_run, items)

        for done in _each(one, work, SESSION_WORKERS):
            report.items_sealed += done.items
            match done.outcome:
                case "sealed":
                    report.sealed += 1
                case "resumed":
                    report.resumed += 1
                case "erased":
                    report.skipped_erased += 1
                case "expired":
                    report.skipped_expired += 1
                case "orphaned":
                    report.orphaned += 1
    return report


def _session(
    session_id: str, head: store.Head | None, plaintext: int, dry_run: bool, items: ThreadPoolExecutor
) -> _Done:
    """One session: its key (step 1, or the one an earlier run gave it), then its items (step 2)."""
    if head is None:  # items holding plaintext, and a session item the Scan did not keep (keyed)
        head = store.head(session_id)
        if head is None:
            return _Done("orphaned")
    outcome: Outcome = "sealed" if head.key_id is None else "resumed"
    key = _key(head, dry_run)
    if isinstance(key, _Done):
        return key
    if key is None:  # a dry run: what it would seal
        return _Done(outcome, plaintext)
    sealed = 0
    for page in store.plaintext(session_id):
        sealed += sum(items.map(lambda raw: store.seal_item(raw, key), page))
    return _Done(outcome, sealed)


def _key(head: store.Head, dry_run: bool) -> bytes | _Done | None:
    """The key its items are sealed under: given by step 1 to a legacy session, or the one its session
    item names; else why the session is left as it is. None in a dry run, where the key would be."""
    for _ in range(KEY_ATTEMPTS):
        at = clock.now()
        if head.erasing or head.expires_at <= epoch(at):
            return _Done("erased" if head.erasing else "expired")
        if head.key_id is not None:
            key = store.key_of(head, at)
            if key is None:  # its key gone: erased, or expired
                return _Done("erased")
            return None if dry_run else key
        if dry_run:
            return None
        given = store.give_key(head)
        if not isinstance(given, store.Head):
            return given if given is not None else _Done("erased")  # None: removed since it was read
        head = given  # refused: keyed by another run, being erased, or its expiry moved
    raise StorageUnavailableError(f"session {head.session_id} kept changing; run seal-legacy again")


def _each[T, R](work: Callable[[T], R], inputs: Iterable[T], workers: int) -> Iterator[R]:
    """work(input) for each input, `workers` at a time (at most twice as many waiting), each result as
    it is done. The first failure is raised, and the work not yet started is dropped."""
    with ThreadPoolExecutor(workers, thread_name_prefix="seal-session") as pool:
        pending: set[Future[R]] = set()
        try:
            for one in inputs:
                pending.add(pool.submit(work, one))
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()
