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
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from .core import classify_vectors
from .domain import CheckReport
from .errors import DatabaseError, EmbeddingError, EphemeraError, VectorStoreError
from .index import BUILD_KEY, LAST_BUILD_KEY, BackgroundIndex
from .store import META, OUTBOX

if TYPE_CHECKING:
    from .core import Engine

LEASE_KEY = "worker_lease"
CURSOR_KEY = "check_cursor"
LAST_RUN_KEY = "worker_last_run"
LAST_SLICE_KEY = "last_slice_check"
LAST_FULL_KEY = "last_full_check"
LAST_CHECK_KEY = "last_check"  # also written by Engine.check
FOUND_KEY = "mismatches_found"
REPAIRED_KEY = "mismatches_repaired"
LAST_BACKUP_KEY = "last_backup"
LAST_BACKUP_ERROR_KEY = "last_backup_error"


@dataclass(slots=True)
class SliceReport:
    """One slice of the cross-check: ids ``(after_id, upto_id]`` on both sides."""

    after_id: int
    upto_id: int | None  # None: the slice reached the end (the next one starts again from 0)
    checked: int = 0
    missing: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    wrong_model: list[int] = field(default_factory=list)
    repaired: int = 0

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.orphaned) + len(self.stale) + len(self.wrong_model)


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


# ---------------------------------------------------------------------------- lease


class Lease:
    """A named lease in ``ephemera_meta``: ``owner|expires_ms``, taken by compare-and-swap.

    Claiming reads the row, and if it is free, expired or already ours, swaps it with a
    conditional ``UPDATE ... WHERE value = <what was read>``; exactly one contender's UPDATE
    matches. A missing row is created with INSERT, and a duplicate-key error means we lost.
    """

    def __init__(
        self, engine: Engine, key: str = LEASE_KEY, seconds: float = 60.0, owner: str | None = None
    ) -> None:
        self.engine = engine
        self.key = key
        self.seconds = seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _now_ms(self) -> int:
        return int(self.engine.clock() * 1000)

    @staticmethod
    def parse(value: str | None) -> tuple[str, int] | None:
        if not value or "|" not in value:
            return None
        owner, _, expires = value.rpartition("|")
        try:
            return owner, int(expires)
        except ValueError:
            return None

    def holder(self) -> tuple[str, int] | None:
        """(owner, expiry in ms) of the current lease, or None when there is none."""
        return self.parse(self.engine.store.get_meta(self.key))

    def claim(self) -> bool:
        """Take or renew the lease; False if another live owner holds it."""
        store = self.engine.store
        now = self._now_ms()
        new_value = f"{self.owner}|{now + int(self.seconds * 1000)}"
        try:
            with store.write() as conn:
                current = conn.execute(select(META.c.value).where(META.c.key == self.key)).scalar()
                if current is None:
                    conn.execute(insert(META).values(key=self.key, value=new_value))
                    return True
                parsed = self.parse(current)
                if parsed is not None and parsed[0] != self.owner and parsed[1] > now:
                    return False
                result = conn.execute(
                    update(META)
                    .where(META.c.key == self.key, META.c.value == current)
                    .values(value=new_value)
                )
                return bool(result.rowcount == 1)
        except DatabaseError as exc:
            if _is_duplicate(exc):
                return False
            raise
        except IntegrityError:
            return False

    def release(self) -> None:
        """Give the lease up early (only if it is still ours)."""
        store = self.engine.store
        with store.write() as conn:
            current = conn.execute(select(META.c.value).where(META.c.key == self.key)).scalar()
            parsed = self.parse(current)
            if parsed is not None and parsed[0] == self.owner:
                conn.execute(
                    update(META)
                    .where(META.c.key == self.key, META.c.value == current)
                    .values(value=f"{self.owner}|0")
                )


def _is_duplicate(exc: Exception) -> bool:
    text = str(exc).upper()
    return "UNIQUE" in text or "DUPLICATE" in text


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


# ---------------------------------------------------------------------------- cross-check


def check_slice(engine: Engine, after_id: int, limit: int, repair: bool = True) -> SliceReport:
    """Cross-check the next ``limit`` memories after ``after_id`` (and vector points in the
    same id range): missing, orphaned, stale, wrong model. Memories waiting in the outbox are
    not problems. Problems are confirmed by a second look before they are reported, so a
    write racing the check is not counted; with ``repair`` they are queued and drained.
    """
    vectors = engine.vectors()
    if vectors is None:
        raise VectorStoreError(engine.vector_status)
    rows = engine.store.id_hashes(after_id, limit)
    end = rows[-1][0] if len(rows) == limit else None
    report = SliceReport(after_id, end, checked=len(rows))
    model = engine.embedder.name

    def classify(ids_hashes: list[tuple[int, str]]) -> tuple[list[int], list[int], list[int]]:
        pending = _pending_among(engine, [mid for mid, _ in ids_hashes])
        return classify_vectors(vectors, ids_hashes, pending, model)

    missing, stale, wrong = classify(rows)
    suspects = set(missing) | set(stale) | set(wrong)
    if suspects:
        # Look again: a write that committed between our reads is not a problem.
        missing, stale, wrong = classify(_id_hashes_for(engine, sorted(suspects)))
    report.missing, report.stale, report.wrong_model = missing, stale, wrong

    orphan_candidates: list[int] = []
    cursor = after_id
    while True:
        points = vectors.scan(cursor, 500)
        if not points:
            break
        ids = [pid for pid, _ in points if end is None or pid <= end]
        if ids:
            known = engine.store.existing_ids(ids)
            orphan_candidates.extend(pid for pid in ids if pid not in known)
        if end is not None and points[-1][0] >= end:
            break
        cursor = points[-1][0]
    if orphan_candidates:
        pending = _pending_among(engine, orphan_candidates)
        known = engine.store.existing_ids(orphan_candidates)
        still = vectors.payloads(orphan_candidates)
        report.orphaned = [
            pid
            for pid in orphan_candidates
            if pid not in pending and pid not in known and pid in still
        ]

    if repair and report.problems:
        engine.store.requeue(report.missing + report.stale + report.wrong_model, "upsert")
        engine.store.requeue(report.orphaned, "delete")
        synced = engine.sync()
        report.repaired = min(report.problems, synced.upserted + synced.deleted)
    return report


def _pending_among(engine: Engine, ids: list[int]) -> set[int]:
    out: set[int] = set()
    with engine.store.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(
                int(r[0])
                for r in conn.execute(
                    select(OUTBOX.c.memory_id).where(OUTBOX.c.memory_id.in_(chunk))
                )
            )
    return out


def _id_hashes_for(engine: Engine, ids: list[int]) -> list[tuple[int, str]]:
    from .domain import content_hash
    from .store import FRAGMENTS

    out: list[tuple[int, str]] = []
    with engine.store.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                select(FRAGMENTS.c.id, FRAGMENTS.c.content).where(FRAGMENTS.c.id.in_(chunk))
            ).all()
            out.extend((int(r.id), content_hash(r.content)) for r in rows)
    return sorted(out)


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
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.check_slice_size = check_slice_size
        self.lease = Lease(engine, seconds=lease_seconds or max(30.0, interval * 3), owner=owner)
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
        """One pass: claim the lease, drain, check a slice, repair, back up if due."""
        with self._run_lock:
            run = WorkerRun(ran=False, started_at=self.engine.clock())
            started = time.perf_counter()
            try:
                if not self.lease.claim():
                    holder = self.lease.holder()
                    run.holder = holder[0] if holder else None
                    return run
                run.ran = True
                if self.engine.vectors() is None:
                    # Another process holds the embedded store (or the server is down): let a
                    # worker that can reach it take the lease, and try again next time.
                    run.errors.append(f"vector store unavailable: {self.engine.vector_status}")
                    run.pending = self.engine.store.pending_count()
                    self.lease.release()
                    return run
                self._drain(run)
                self._drop_retired(run)
                if self.lease.claim():
                    self._check(run)
                if self.lease.claim() and not self.indexer.active:
                    self._backup_if_due(run)  # not during a build: both want the cores
                if self.lease.claim():
                    self._index(run)
                run.pending = self.engine.store.pending_count()
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
                run.errors.append(str(exc))
            finally:
                if self.release_after_run and not self.indexer.active:
                    try:
                        self.engine.release_vectors()
                    except Exception as exc:  # noqa: BLE001 - never let closing kill the loop
                        run.errors.append(f"closing vector store: {exc}")
                run.seconds = round(time.perf_counter() - started, 3)
                self.last_run = run
            return run

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
        from .reembed import drop_retired

        try:
            drop_retired(self.engine)
        except Exception as exc:  # noqa: BLE001 - housekeeping never stops the run
            run.errors.append(f"dropping retired collections: {exc}")

    def _check(self, run: WorkerRun) -> None:
        engine = self.engine
        if engine.vectors() is None:
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
        if self.backup_dir is None:
            return
        if self.idle is not None and not self.idle():
            return  # the export competes with search for the cores: wait for a pause
        last = last_backup(self.engine)
        if last is not None and self.engine.clock() - float(last.get("at", 0)) < self.backup_every:
            return
        from .backup import apply_retention, create_backup

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


def last_backup(engine: Engine) -> dict[str, Any] | None:
    raw = engine.store.get_meta(LAST_BACKUP_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


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
    raw_index = engine.store.get_meta(LAST_BUILD_KEY)
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
        "index_building": bool(engine.store.get_meta(BUILD_KEY)),
        "last_index_build": json.loads(raw_index) if raw_index else None,
        "worker": worker,
        "vector_status": engine.vector_status,
    }
