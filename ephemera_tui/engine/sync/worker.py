"""The background worker: drain the outbox, cross-check a slice, repair, take scheduled backups.

One loop, re-armed only after each run finishes (never two runs of one worker at once). Several
workers on one database (the app's and a headless ``ephemera worker``) take turns through a
lease row in ``ephemera_meta`` claimed with a conditional UPDATE: only the holder runs, so no
work is done twice. The lease expires on its own when its holder dies (kill -9, power loss).

In the app::

    worker = Worker(engine)
    thread = threading.Thread(target=worker.run_forever, args=(stop_event,), daemon=True)

or call :meth:`Worker.run_once` from the app's own timer and show :func:`health` in a view.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain import CheckReport
from ..errors import EmbeddingError, EphemeraError, VectorStoreError
from ..store import Lease, MetaKey
from ..vectors.index import BackgroundIndex
from .reconcile import SliceReport, check_slice

if TYPE_CHECKING:
    from ..core import Engine

log = logging.getLogger(__name__)

__all__ = ["Lease", "SliceReport", "Worker", "WorkerRun", "check_slice", "health"]

CHECK_EVERY_SECONDS = 3600.0
"""How long after a complete cross-check pass the next one starts (a pass is one slice a run)."""
BACKUP_RETRY_SECONDS = 3600.0
"""How long after a failed scheduled backup the next attempt is made."""

# The meta keys this module reads and writes (names kept for callers and tests).
LEASE_KEY = MetaKey.WORKER_LEASE
CURSOR_KEY = MetaKey.CHECK_CURSOR
LAST_RUN_KEY = MetaKey.WORKER_LAST_RUN
LAST_SLICE_KEY = MetaKey.LAST_SLICE_CHECK
LAST_FULL_KEY = MetaKey.LAST_FULL_CHECK
LAST_CHECK_KEY = MetaKey.LAST_CHECK
FOUND_KEY = MetaKey.MISMATCHES_FOUND
REPAIRED_KEY = MetaKey.MISMATCHES_REPAIRED
LAST_BACKUP_KEY = MetaKey.LAST_BACKUP
LAST_BACKUP_ERROR_KEY = MetaKey.LAST_BACKUP_ERROR


@dataclass(slots=True)
class WorkerRun:
    """What one :meth:`Worker.run_once` did (``ran`` False: another worker holds the lease)."""

    ran: bool
    started_at: float
    holder: str | None = None
    synced: int = 0
    sync_failed: int = 0
    pending: int = 0
    checked: int = 0
    found: int = 0
    repaired: int = 0
    wrapped: bool = False
    backup: str | None = None
    index: str | None = None  # what the background HNSW build did this run
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    idle: bool = False  # nothing was due: no lease claimed, nothing written

    @property
    def did_something(self) -> bool:
        """Whether this run changed anything worth recording."""
        return bool(
            self.synced or self.sync_failed or self.checked or self.backup or self.index
        ) or bool(self.errors)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if not self.ran:
            return f"standby: another worker holds the lease ({self.holder})"
        parts = [f"synced {self.synced}", f"pending {self.pending}", f"checked {self.checked}"]
        if self.found:
            parts.append(f"found {self.found}, repaired {self.repaired}")
        if self.backup:
            parts.append(f"backup {self.backup}")
        if self.index:
            parts.append(self.index)
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        return ", ".join(parts)


# ---------------------------------------------------------------------------- meta helpers


def _meta_int(engine: Engine, key: str) -> int:
    try:
        return int(engine.store.get_meta(key) or 0)
    except ValueError:
        return 0


def _add_counter(engine: Engine, key: str, amount: int) -> None:
    if amount:
        engine.store.set_meta(key, str(_meta_int(engine, key) + amount))


def record_check(engine: Engine, report: CheckReport) -> None:
    """Add a full check's findings to the health counters (``ephemera check`` calls this)."""
    _add_counter(engine, FOUND_KEY, report.problems)
    _add_counter(engine, REPAIRED_KEY, report.repaired)
    if report.vector_status == "ok":
        engine.store.set_meta(LAST_FULL_KEY, str(int(engine.clock())))


# ---------------------------------------------------------------------------- the worker


class Worker:
    """Runs the upkeep passes for one engine. Thread-safe to stop; one run at a time.

    ``backup_dir``: where scheduled backup sets go (None: no scheduled backups).
    ``release_vectors``: close the embedded vector store after each run so other processes
    (the CLI, the app) can open it in between; the headless worker does this, except while it
    builds an index in the background.
    ``index_threshold``: build the embedded store's HNSW index in the background (see
    :class:`~.index.BackgroundIndex`) once this many vectors are not in it; 0: never.
    ``idle``: says whether the user is idle, so the app's pauses (the index hand-over, the
    export of a scheduled backup) fall where nobody notices them.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 5.0,
        check_slice_size: int = 500,
        lease_seconds: float | None = None,
        backup_dir: Path | None = None,
        backup_every: float = 86_400.0,
        keep_daily: int = 7,
        keep_weekly: int = 4,
        release_vectors: bool = False,
        index_threshold: int = 0,
        idle: Callable[[], bool] | None = None,
        owner: str | None = None,
        on_run: Callable[[WorkerRun], None] | None = None,
        check_every: float = CHECK_EVERY_SECONDS,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.check_slice_size = check_slice_size
        self.lease = Lease(
            engine.store,
            engine.clock,
            seconds=lease_seconds or max(30.0, interval * 3),
            owner=owner,
        )
        self.check_every = check_every
        self.backup_dir = backup_dir
        self.backup_every = backup_every
        self.keep_daily = keep_daily
        self.keep_weekly = keep_weekly
        self.release_after_run = release_vectors
        self.idle = idle
        self.indexer = BackgroundIndex(engine, index_threshold, idle)
        self.on_run = on_run
        self._run_lock = threading.Lock()
        self.last_run: WorkerRun | None = None

    def run_once(self) -> WorkerRun:
        """One pass: if anything is due, claim the lease, drain, check a slice, repair, back
        up. Nothing due (the usual idle case) means nothing written: the lease is claimed, and
        stamps are written, only when there is work."""
        with self._run_lock:
            run = WorkerRun(ran=False, started_at=self.engine.clock())
            started = time.perf_counter()
            try:
                if self.engine.vectors() is None:
                    # Another process holds the embedded store (or the server is down): leave
                    # the lease to a worker that can reach it, and try again next time.
                    run.errors.append(f"vector store unavailable: {self.engine.vector_status}")
                    run.pending = self.engine.store.pending_count()
                    self.lease.release()
                    return run
                run.pending = self.engine.store.pending_count()
                if not self._work_due(run.pending):
                    run.idle = True
                    return run
                if not self.lease.claim():
                    holder = self.lease.holder()
                    run.holder = holder[0] if holder else None
                    return run
                run.ran = True
                self._drain(run)
                self._drop_retired(run)
                if self.lease.claim():
                    self._check(run)
                if self.lease.claim() and not self.indexer.active:
                    self._backup_if_due(run)  # not during a build: both want the cores
                if self.lease.claim():
                    self._index(run)
                run.pending = self.engine.store.pending_count()
                if run.did_something:
                    self.engine.store.set_meta(
                        LAST_RUN_KEY,
                        json.dumps(
                            {
                                "at": int(run.started_at),
                                "owner": self.lease.owner,
                                "summary": run.summary(),
                            }
                        ),
                    )
            except EphemeraError as exc:
                log.warning("upkeep run failed: %s", exc, exc_info=exc)
                run.errors.append(str(exc))
            finally:
                if self.release_after_run and not self.indexer.active:
                    try:
                        self.engine.release_vectors()
                    except Exception as exc:  # noqa: BLE001 - never let closing kill the loop
                        log.warning("closing the vector store failed", exc_info=exc)
                        run.errors.append(f"closing vector store: {exc}")
                run.seconds = round(time.perf_counter() - started, 3)
                self.last_run = run
            return run

    def _work_due(self, pending: int) -> bool:
        """Whether any step has work now (reads only): vectors to write, a cross-check pass
        under way or due, a backup due, an index build running or due, collections to drop."""
        store = self.engine.store
        if pending or self.indexer.active or store.get_meta(MetaKey.VECTOR_COLLECTION_RETIRED):
            return True
        if self._check_due() or self._backup_due():
            return True
        return self.indexer.due()

    def _check_due(self) -> bool:
        """A pass is under way (the cursor is past the start), or the last one is old."""
        engine = self.engine
        if _meta_int(engine, CURSOR_KEY) > 0:
            return True
        last = _meta_int(engine, LAST_FULL_KEY)
        return not last or engine.clock() - last >= self.check_every

    def _backup_due(self) -> bool:
        if self.backup_dir is None:
            return False
        if self.idle is not None and not self.idle():
            return False  # the export competes with search for the cores: wait for a pause
        now = self.engine.clock()
        failed = _meta_json(self.engine, LAST_BACKUP_ERROR_KEY)
        if failed and now - float(failed.get("at", 0)) < BACKUP_RETRY_SECONDS:
            last_ok = last_backup(self.engine)
            if last_ok is None or float(last_ok.get("at", 0)) < float(failed.get("at", 0)):
                return False
        last = last_backup(self.engine)
        return last is None or now - float(last.get("at", 0)) >= self.backup_every

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set; the next run is armed only after this one ends."""
        try:
            while not stop_event.is_set():
                run = self.run_once()
                if self.on_run is not None:
                    self.on_run(run)
                stop_event.wait(self.interval)
        finally:
            self.indexer.cancel("the worker stopped")
            with contextlib.suppress(EphemeraError):
                self.lease.release()

    # ------------------------------------------------------------------ steps

    def _drain(self, run: WorkerRun) -> None:
        report = self.engine.sync()
        run.synced = report.upserted + report.deleted
        run.sync_failed = report.failed
        if report.error:
            run.errors.append(f"sync: {report.error}")

    def _drop_retired(self, run: WorkerRun) -> None:
        """Drop old vector collections a re-embed left behind while they were still open."""
        from ..vectors.reembed import drop_retired

        try:
            drop_retired(self.engine)
        except Exception as exc:  # noqa: BLE001 - housekeeping never stops the run
            log.warning("dropping retired collections failed", exc_info=exc)
            run.errors.append(f"dropping retired collections: {exc}")

    def _check(self, run: WorkerRun) -> None:
        engine = self.engine
        if engine.vectors() is None or not self._check_due():
            return
        after = _meta_int(engine, CURSOR_KEY) or -1
        try:
            report = check_slice(engine, after, self.check_slice_size, repair=True)
        except (VectorStoreError, EmbeddingError) as exc:
            run.errors.append(f"check: {exc}")
            return
        run.checked = report.checked
        run.found = report.problems
        run.repaired = report.repaired
        now = str(int(engine.clock()))
        _add_counter(engine, FOUND_KEY, report.problems)
        _add_counter(engine, REPAIRED_KEY, report.repaired)
        engine.store.set_meta(LAST_SLICE_KEY, now)
        if report.upto_id is None:
            run.wrapped = True
            engine.store.set_meta(CURSOR_KEY, "-1")
            engine.store.set_meta(LAST_FULL_KEY, now)
        else:
            engine.store.set_meta(CURSOR_KEY, str(report.upto_id))

    def _index(self, run: WorkerRun) -> None:
        try:
            run.index = self.indexer.step()
        except EphemeraError as exc:
            run.errors.append(str(exc))

    def _backup_if_due(self, run: WorkerRun) -> None:
        if self.backup_dir is None or not self._backup_due():
            return
        from ..backup import apply_retention, create_backup

        try:
            result = create_backup(self.engine, self.backup_dir)
            apply_retention(self.backup_dir, self.keep_daily, self.keep_weekly)
            run.backup = str(result.path)
        except EphemeraError as exc:
            run.errors.append(f"backup: {exc}")
            self.engine.store.set_meta(
                LAST_BACKUP_ERROR_KEY,
                json.dumps({"at": int(self.engine.clock()), "error": str(exc)}),
            )


# ---------------------------------------------------------------------------- health


def _meta_json(engine: Engine, key: str) -> dict[str, Any] | None:
    raw = engine.store.get_meta(key)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def last_backup(engine: Engine) -> dict[str, Any] | None:
    """The record of the last backup set written, or None."""
    return _meta_json(engine, LAST_BACKUP_KEY)


def health(engine: Engine) -> dict[str, Any]:
    """Everything the health view and ``ephemera check`` show: outbox, checks, backups, worker.

    Cheap (a few small SQL reads); does not open the vector store.
    """
    now = engine.clock()
    outbox = engine.store.outbox_summary()

    def stamp(key: str) -> dict[str, Any] | None:
        raw = engine.store.get_meta(key)
        if not raw:
            return None
        try:
            at = int(float(raw))
        except ValueError:
            return None
        return {"at": at, "age_s": max(0.0, round(now - at, 1))}

    lease = Lease.parse(engine.store.get_meta(LEASE_KEY))
    worker: dict[str, Any] | None = None
    if lease is not None:
        worker = {"owner": lease[0], "active": lease[1] > now * 1000}
    raw_run = engine.store.get_meta(LAST_RUN_KEY)
    if raw_run:
        with contextlib.suppress(ValueError):
            worker = {**(worker or {}), "last_run": json.loads(raw_run)}
    backup = last_backup(engine)
    if backup is not None:
        backup = {**backup, "age_s": max(0.0, round(now - float(backup.get("at", 0)), 1))}
    raw_error = engine.store.get_meta(LAST_BACKUP_ERROR_KEY)
    raw_index = engine.store.get_meta(MetaKey.INDEX_BUILD_LAST)
    cursor = _meta_int(engine, CURSOR_KEY)
    return {
        "pending": outbox["pending"],
        "outbox_oldest_age_s": outbox["oldest_age_s"],
        "outbox_max_attempts": outbox["max_attempts"],
        "outbox_last_error": outbox["last_error"],
        "mismatches_found": _meta_int(engine, FOUND_KEY),
        "mismatches_repaired": _meta_int(engine, REPAIRED_KEY),
        "last_check": stamp(LAST_CHECK_KEY),
        "last_slice_check": stamp(LAST_SLICE_KEY),
        "last_full_check": stamp(LAST_FULL_KEY),
        "check_cursor": None if cursor <= 0 else cursor,
        "last_backup": backup,
        "last_backup_error": json.loads(raw_error) if raw_error else None,
        "index_building": bool(engine.store.get_meta(MetaKey.INDEX_BUILD)),
        "last_index_build": json.loads(raw_index) if raw_index else None,
        "worker": worker,
        "vector_status": engine.vector_status,
    }
