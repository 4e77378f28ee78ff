"""The background worker: drain the outbox, cross-check a slice, repair, take scheduled backups.

One loop, re-armed only after each run finishes (never two runs of one worker at once). Several
workers on one database (the app's and a headless ``ephemera worker``) take turns through a
lease row in ``ephemera_meta`` claimed with a conditional UPDATE: only the holder runs, so no
work is done twice. The lease expires on its own when its holder dies (kill -9, power loss).

With ``worker_slices`` above 1 the workers share the work instead of taking turns: the outbox
is cut into that many slices (``memory_id % slices``), each drained under its own lease, and
the cross-check pass is handed out range by range, each range claimed with its own expiring
lease row; a killed worker's slice or range is taken over once its lease runs out. Backups,
index builds and dropping retired collections stay under the one lease.

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
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain import CheckReport
from ..errors import DatabaseError, EmbeddingError, EphemeraError, VectorStoreError
from ..observability.instrument import unrecorded
from ..store import Lease, MetaKey
from ..vectors.index import BackgroundIndex
from .reconcile import SliceReport, check_slice

if TYPE_CHECKING:
    from ..core import Engine

log = logging.getLogger(__name__)

__all__ = [
    "BackupRecord",
    "Failure",
    "Health",
    "IndexBuild",
    "LastRun",
    "Lease",
    "SliceReport",
    "Stamp",
    "Worker",
    "WorkerRun",
    "WorkerState",
    "check_slice",
    "health",
]

CHECK_EVERY_SECONDS = 3600.0
"""How long after a complete cross-check pass the next one starts (a pass is one slice a run)."""
BACKUP_RETRY_SECONDS = 3600.0
"""How long after a failed scheduled backup the next attempt is made."""
SLICE_BATCH = 256
"""Outbox rows applied per batch by a sliced worker (the lease is renewed between batches)."""
ALL_CLAIMED = "-2"
"""``check_cursor`` once every range of a sliced pass is claimed (the last ones may still run)."""

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
    ``slices``: 1 (one worker at a time does everything) or more (the outbox and the
    cross-check are shared out in slices under leases of their own); default the
    ``worker_slices`` setting. ``lease_seconds`` defaults to ``worker_lease_s``.
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
        slices: int | None = None,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.check_slice_size = check_slice_size
        settings = engine.settings
        self.lease = Lease(
            engine.store,
            engine.clock,
            seconds=lease_seconds or max(settings.worker_lease_s, interval * 3),
            owner=owner,
        )
        self.slices = max(1, slices if slices is not None else settings.worker_slices)
        self._outbox_leases: dict[int, Lease] = {}
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
        stamps are written, only when there is work. Its SQL is not timed as user latency."""
        with self._run_lock, unrecorded():
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
                if self.slices > 1:
                    self._run_sliced(run)
                elif not self.lease.claim():
                    holder = self.lease.holder()
                    run.holder = holder[0] if holder else None
                    return run
                else:
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
        """A pass is under way (the cursor is past the start, or a sliced pass has ranges
        out), or the last one is old."""
        engine = self.engine
        if _meta_int(engine, CURSOR_KEY) > 0:
            return True
        if self.slices > 1 and engine.store.get_meta(CURSOR_KEY) == ALL_CLAIMED:
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
            for lease in self._outbox_leases.values():
                with contextlib.suppress(EphemeraError):
                    lease.release()

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

    # ------------------------------------------------------------------ sliced upkeep

    def _run_sliced(self, run: WorkerRun) -> None:
        """Several workers share the work: outbox slices and cross-check ranges under leases
        of their own, the rest (backups, index builds, retired drops) under the one lease."""
        self._drain_slices(run)
        self._check_claimed(run)
        store = self.engine.store
        singles = (
            self.indexer.active
            or bool(store.get_meta(MetaKey.VECTOR_COLLECTION_RETIRED))
            or self._backup_due()
            or self.indexer.due()
        )
        if not singles:
            return
        if not self.lease.claim():
            holder = self.lease.holder()
            run.holder = holder[0] if holder else None
            return
        run.ran = True
        self._drop_retired(run)
        if not self.indexer.active:
            self._backup_if_due(run)
        if self.lease.claim():
            self._index(run)

    def _rotation(self, keys: Iterable[int]) -> list[int]:
        """``keys`` in order from a point of this worker's own, so workers start apart."""
        ordered = sorted(keys)
        if not ordered:
            return []
        start = zlib.crc32(self.lease.owner.encode()) % len(ordered)
        return ordered[start:] + ordered[:start]

    def _outbox_lease(self, part: int) -> Lease:
        lease = self._outbox_leases.get(part)
        if lease is None:
            lease = Lease(
                self.engine.store,
                self.engine.clock,
                key=f"{MetaKey.OUTBOX_SLICE_LEASE}{part}",
                seconds=self.lease.seconds,
                owner=self.lease.owner,
            )
            self._outbox_leases[part] = lease
        return lease

    def _drain_slices(self, run: WorkerRun) -> None:
        """Drain every outbox slice with rows due that no other live worker holds."""
        store = self.engine.store
        due = store.due_outbox_slices(self.slices)  # a read: an idle worker claims nothing
        for part in self._rotation(due):
            lease = self._outbox_lease(part)
            if not lease.claim():
                continue
            run.ran = True
            try:
                while True:
                    items = store.due_outbox(SLICE_BATCH, part=(part, self.slices))
                    if not items:
                        break
                    done = self.engine.outbox.apply(items)
                    run.synced += done.upserted + done.deleted
                    run.sync_failed += done.failed
                    if done.error:
                        run.errors.append(f"sync: {done.error}")
                        return
                    if not lease.claim():
                        break  # it ran out while we worked and someone else has it now
            finally:
                with contextlib.suppress(EphemeraError):
                    lease.release()

    def _check_claimed(self, run: WorkerRun) -> None:
        """One cross-check range a run: an expired claim of a dead worker first, else the
        next range of the pass, claimed with the cursor in one transaction."""
        engine = self.engine
        store = engine.store
        if engine.vectors() is None:
            return
        now_ms = int(engine.clock() * 1000)
        for key, value in sorted(store.meta_with_prefix(MetaKey.CHECK_CLAIM).items()):
            held = Lease.parse(value)
            if held is not None and held[0] != self.lease.owner and held[1] > now_ms:
                continue
            lease = self._claim_lease(key)
            if lease.claim():
                run.ran = True
                self._check_range(run, lease)
                return
        if not self._check_due():
            return
        for _attempt in range(5):
            raw = store.get_meta(CURSOR_KEY)
            if raw == ALL_CLAIMED:
                self._finish_pass(run)
                return
            try:
                after = int(raw or -1)
            except ValueError:
                after = -1
            after = after if after > 0 else -1
            upto = store.nth_id_after(after, self.check_slice_size)
            key = f"{MetaKey.CHECK_CLAIM}{after}:{'end' if upto is None else upto}"
            expires = now_ms + int(self.lease.seconds * 1000)
            cursor = ALL_CLAIMED if upto is None else str(upto)
            try:
                won = store.claim_range(
                    CURSOR_KEY, raw, cursor, key, f"{self.lease.owner}|{expires}"
                )
            except DatabaseError as exc:
                if not (exc.duplicate_key or exc.retryable):
                    raise
                won = False
            if won:
                lease = self._claim_lease(key)
                lease.adopt(expires)
                run.ran = True
                self._check_range(run, lease)
                return

    def _claim_lease(self, key: str) -> Lease:
        return Lease(
            self.engine.store,
            self.engine.clock,
            key=key,
            seconds=self.lease.seconds,
            owner=self.lease.owner,
        )

    def _check_range(self, run: WorkerRun, lease: Lease) -> None:
        """Cross-check the claimed ids ``(after, upto]``, queue what differs for repair (the
        slice holders drain it), and give the claim up; the last range ends the pass."""
        engine = self.engine
        store = engine.store
        after_text, _, upto_text = lease.key[len(MetaKey.CHECK_CLAIM) :].partition(":")
        after, upto = int(after_text), None if upto_text == "end" else int(upto_text)
        total = SliceReport(after, upto)
        cursor = after
        try:
            while True:
                part = check_slice(engine, cursor, self.check_slice_size, repair=False)
                total.checked += part.checked
                total.missing += part.missing
                total.stale += part.stale
                total.wrong_model += part.wrong_model
                total.orphaned += part.orphaned
                if part.upto_id is None or (upto is not None and part.upto_id >= upto):
                    break
                cursor = part.upto_id  # rows were added inside the range since it was claimed
                if not lease.claim():
                    return
        except (VectorStoreError, EmbeddingError) as exc:
            run.errors.append(f"check: {exc}")  # the claim runs out and is taken over
            return
        if total.problems:
            store.requeue(total.missing + total.stale + total.wrong_model, "upsert")
            store.requeue(total.orphaned, "delete")
        run.checked += total.checked
        run.found += total.problems
        run.repaired += total.problems  # queued; the slices' holders write them
        store.increment_meta(FOUND_KEY, total.problems)
        store.increment_meta(REPAIRED_KEY, total.problems)
        store.set_meta(LAST_SLICE_KEY, str(int(engine.clock())))
        lease.drop()
        if store.get_meta(CURSOR_KEY) == ALL_CLAIMED:
            self._finish_pass(run)

    def _finish_pass(self, run: WorkerRun) -> None:
        """Once every range is claimed and none is still out, the pass is complete."""
        store = self.engine.store
        if store.meta_with_prefix(MetaKey.CHECK_CLAIM):
            return
        if store.swap_meta(CURSOR_KEY, ALL_CLAIMED, "-1"):
            store.set_meta(LAST_FULL_KEY, str(int(self.engine.clock())))
            run.wrapped = True

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


def _int(value: object) -> int | None:
    """A stored record's whole number, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(float(value))
    except (ValueError, OverflowError):
        return None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Stamp:
    """When an upkeep step last ran (Unix seconds) and how long ago that was."""

    at: int
    age_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "age_s": self.age_s}


@dataclass(frozen=True, slots=True)
class BackupRecord:
    """The last backup set written: where, what it holds, and how long ago."""

    at: int
    path: str | None
    memories: int | None
    max_memory_id: int | None
    vectors: str | None  # the snapshot's kind, None when the set has no vector snapshot
    age_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "path": self.path,
            "memories": self.memories,
            "max_memory_id": self.max_memory_id,
            "vectors": self.vectors,
            "age_s": self.age_s,
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """A step that failed: when, and the error in one line."""

    at: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "error": self.error}


@dataclass(frozen=True, slots=True)
class IndexBuild:
    """How the last background HNSW build ended: done (``points``, ``indexed``, ``seconds``),
    failed (``error``) or cancelled (``cancelled``, the reason)."""

    at: int | None = None
    collection: str | None = None
    points: int | None = None
    indexed: int | None = None
    replayed: int | None = None
    seconds: float | None = None
    build_seconds: float | None = None
    open_ms: int | None = None
    replay_ms: int | None = None
    error: str | None = None
    cancelled: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields the stored record has (a failed build has only ``at`` and ``error``)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True, slots=True)
class LastRun:
    """The last upkeep run that did something: when, which worker, and what it did."""

    at: int | None
    owner: str | None
    summary: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "owner": self.owner, "summary": self.summary}


@dataclass(frozen=True, slots=True)
class WorkerState:
    """The upkeep lease (its holder, and whether it is still valid) and the last run.
    ``owner`` and ``active`` are None when no lease was ever taken."""

    owner: str | None = None
    active: bool | None = None
    last_run: LastRun | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.active is not None:
            out.update(owner=self.owner, active=self.active)
        if self.last_run is not None:
            out["last_run"] = self.last_run.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Health:
    """Everything the health view and ``ephemera check`` show: the outbox, mismatches found
    and repaired, the last checks and backup, the background index build and the worker."""

    pending: int
    outbox_oldest_age_s: float | None
    outbox_max_attempts: int
    outbox_last_error: str | None
    mismatches_found: int
    mismatches_repaired: int
    last_check: Stamp | None
    last_slice_check: Stamp | None
    last_full_check: Stamp | None
    check_cursor: int | None  # the id a cross-check pass under way has reached
    last_backup: BackupRecord | None
    last_backup_error: Failure | None
    index_building: bool
    last_index_build: IndexBuild | None
    worker: WorkerState | None
    vector_status: str

    @property
    def last_check_any(self) -> Stamp | None:
        """The last complete cross-check: the worker's full pass, else ``ephemera check``."""
        return self.last_full_check or self.last_check

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``ephemera check --json`` under ``health``."""

        def plain(record: Any) -> Any:
            return None if record is None else record.to_dict()

        return {
            "pending": self.pending,
            "outbox_oldest_age_s": self.outbox_oldest_age_s,
            "outbox_max_attempts": self.outbox_max_attempts,
            "outbox_last_error": self.outbox_last_error,
            "mismatches_found": self.mismatches_found,
            "mismatches_repaired": self.mismatches_repaired,
            "last_check": plain(self.last_check),
            "last_slice_check": plain(self.last_slice_check),
            "last_full_check": plain(self.last_full_check),
            "check_cursor": self.check_cursor,
            "last_backup": plain(self.last_backup),
            "last_backup_error": plain(self.last_backup_error),
            "index_building": self.index_building,
            "last_index_build": plain(self.last_index_build),
            "worker": plain(self.worker),
            "vector_status": self.vector_status,
        }


def _index_build(record: dict[str, Any] | None) -> IndexBuild | None:
    if record is None:
        return None
    return IndexBuild(
        at=_int(record.get("at")),
        collection=_text(record.get("collection")),
        points=_int(record.get("points")),
        indexed=_int(record.get("indexed")),
        replayed=_int(record.get("replayed")),
        seconds=_float(record.get("seconds")),
        build_seconds=_float(record.get("build_seconds")),
        open_ms=_int(record.get("open_ms")),
        replay_ms=_int(record.get("replay_ms")),
        error=_text(record.get("error")),
        cancelled=_text(record.get("cancelled")),
    )


def health(engine: Engine) -> Health:
    """Everything the health view and ``ephemera check`` show: outbox, checks, backups, worker.

    Cheap (a few small SQL reads); does not open the vector store. A stored record that cannot
    be read (hand-edited, or from another version) counts as absent.
    """
    now = engine.clock()
    outbox = engine.store.outbox_summary()

    def stamp(key: str) -> Stamp | None:
        at = _int(engine.store.get_meta(key) or None)
        return None if at is None else Stamp(at, max(0.0, round(now - at, 1)))

    lease = Lease.parse(engine.store.get_meta(LEASE_KEY))
    run = _meta_json(engine, LAST_RUN_KEY)
    worker: WorkerState | None = None
    if lease is not None or run is not None:
        worker = WorkerState(
            owner=lease[0] if lease else None,
            active=lease[1] > now * 1000 if lease else None,
            last_run=None
            if run is None
            else LastRun(_int(run.get("at")), _text(run.get("owner")), _text(run.get("summary"))),
        )
    backup: BackupRecord | None = None
    stored = last_backup(engine)
    if stored is not None:
        at = _int(stored.get("at")) or 0
        backup = BackupRecord(
            at=at,
            path=_text(stored.get("path")),
            memories=_int(stored.get("memories")),
            max_memory_id=_int(stored.get("max_memory_id")),
            vectors=_text(stored.get("vectors")),
            age_s=max(0.0, round(now - at, 1)),
        )
    failed = _meta_json(engine, LAST_BACKUP_ERROR_KEY)
    cursor = _meta_int(engine, CURSOR_KEY)
    return Health(
        pending=outbox["pending"],
        outbox_oldest_age_s=outbox["oldest_age_s"],
        outbox_max_attempts=outbox["max_attempts"],
        outbox_last_error=outbox["last_error"],
        mismatches_found=_meta_int(engine, FOUND_KEY),
        mismatches_repaired=_meta_int(engine, REPAIRED_KEY),
        last_check=stamp(LAST_CHECK_KEY),
        last_slice_check=stamp(LAST_SLICE_KEY),
        last_full_check=stamp(LAST_FULL_KEY),
        check_cursor=None if cursor <= 0 else cursor,
        last_backup=backup,
        last_backup_error=None
        if failed is None
        else Failure(_int(failed.get("at")) or 0, str(failed.get("error", ""))),
        index_building=bool(engine.store.get_meta(MetaKey.INDEX_BUILD)),
        last_index_build=_index_build(_meta_json(engine, MetaKey.INDEX_BUILD_LAST)),
        worker=worker,
        vector_status=engine.vector_status,
    )
