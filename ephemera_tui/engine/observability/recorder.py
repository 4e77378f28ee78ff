"""Metrics that stay on: latency per search stage and per write, errors per operation, SQL query
latency, connection pool, embedding cache, process memory, outbox, and vector index quality.

Recording is an append to an in-memory list under a lock (about a microsecond). The list is
written in batches to ``metrics.db`` (a small SQLite file in the data directory) by a daemon
thread every few seconds, when it grows large, when the engine closes and at interpreter exit,
so an ``ephemera search`` in one shell shows up in ``ephemera stats`` run afterwards in another
and in the app's status screen.

What ``metrics.db`` keeps:

- ``samples``: a rolling window of raw observations (milliseconds) per metric: at most
  :data:`WINDOW_SECONDS` old and :data:`MAX_ROWS` rows; p50/p95/p99 are computed over the
  newest :data:`QUANTILE_SAMPLES` of a metric.
- ``counters``: cumulative totals across processes: errors, embedding cache hits and misses,
  and Prometheus histogram buckets (so ``/metrics`` counters only ever go up).
- ``gauges``: last value per process (memory, pool) and global facts (index recall).

Metric names: ``search.<stage>`` (parse, keyword, embed, vector, enrich, total),
``browse.total``, ``write.<op>`` (add, update, delete, import, sync), ``op.check``,
``sql.query``; counters ``errors.<op>`` and ``invalid.<op>`` (rejected input), ``cache.hits``,
``cache.misses``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.db"
WINDOW_SECONDS = 7 * 86400
MAX_ROWS = 200_000
QUANTILE_SAMPLES = 5000
FLUSH_SECONDS = 2.0
FLUSH_ROWS = 2000
GAUGE_STALE_SECONDS = 600.0
# Prometheus histogram bucket bounds, milliseconds (exported in seconds).
BUCKETS_MS = (0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
SEARCH_STAGES = ("parse", "keyword", "embed", "vector", "enrich", "total")
WRITE_OPS = ("add", "update", "delete", "import", "sync")
INDEX_RECALL = "index.recall_at_10"

F = TypeVar("F", bound=Callable[..., Any])

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, name TEXT NOT NULL,
    value REAL NOT NULL, pid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS idx_samples_name ON samples (name, id);
CREATE INDEX IF NOT EXISTS idx_samples_ts ON samples (ts);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS gauges (
    name TEXT NOT NULL, pid INTEGER NOT NULL, value REAL NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (name, pid));
"""


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(_SCHEMA)
    return conn


def bucket_bound(ms: float) -> float:
    """The smallest histogram bound holding ``ms`` (``inf`` above the largest)."""
    for bound in BUCKETS_MS:
        if ms <= bound:
            return float(bound)
    return math.inf


def _bucket_key(name: str, bound: float) -> str:
    return f"h|{name}|{'+Inf' if math.isinf(bound) else repr(float(bound))}"


class MetricsRecorder:
    """Records observations in memory and persists them in batches to ``metrics.db``.

    ``path`` None keeps everything in memory (nothing outlives the process). Never raises:
    a metrics failure must not fail a search or a write (it is counted in ``flush_errors``).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        enabled: bool = True,
        flush_seconds: float = FLUSH_SECONDS,
        window_seconds: float = WINDOW_SECONDS,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.path = path
        self.enabled = enabled
        self.flush_seconds = flush_seconds
        self.window_seconds = window_seconds
        self.max_rows = max_rows
        self.pid = os.getpid()
        self.flush_errors = 0
        self.last_flush_error: str | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._samples: list[tuple[float, str, float]] = []
        self._counts: dict[str, float] = {}
        self._gauges: dict[str, tuple[float, float, int]] = {}
        self._cumulative: dict[str, Callable[[], float | None]] = {}
        self._cumulative_seen: dict[str, float] = {}
        self._gauge_sources: list[Callable[[], dict[str, float]]] = []
        self._gauges_seen: set[str] = set()  # source gauges written at least once
        self._conn: sqlite3.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._closed = False
        # In-memory view for path=None (and the newest values before a flush).
        self._memory_samples: list[tuple[float, str, float]] = []
        self._memory_counts: dict[str, float] = {}
        if path is not None:
            atexit.register(_close_at_exit, weakref.ref(self))

    # ------------------------------------------------------------------ recording (hot path)

    def observe(self, name: str, ms: float) -> None:
        """One latency observation in milliseconds."""
        if not self.enabled:
            return
        with self._lock:
            self._samples.append((time.time(), name, ms))
            size = len(self._samples)
        if self._thread is None:
            self._start_thread()
        elif size >= FLUSH_ROWS:
            self._stop.set()  # wake the flusher now

    def count(self, name: str, amount: float = 1.0) -> None:
        """Add to a cumulative counter (errors, operations)."""
        if not self.enabled:
            return
        with self._lock:
            self._counts[name] = self._counts.get(name, 0.0) + amount
        if self._thread is None:
            self._start_thread()

    def error(self, op: str) -> None:
        """Count one failure of operation ``op``."""
        self.count(f"errors.{op}")

    def gauge(self, name: str, value: float, *, shared: bool = False) -> None:
        """Set a gauge: per process, or ``shared`` (one value for all, e.g. index recall)."""
        if not self.enabled:
            return
        with self._lock:
            self._gauges[name] = (float(value), time.time(), 0 if shared else self.pid)

    def record_search(self, timings: dict[str, float], mode: str) -> None:
        """The stage timings of one search (``SearchResult.timings_ms``)."""
        if not self.enabled:
            return
        prefix = "browse." if mode == "browse" else "search."
        now = time.time()
        with self._lock:
            self._samples.extend((now, prefix + stage, ms) for stage, ms in timings.items())
        if self._thread is None:
            self._start_thread()

    def track(self, name: str, read: Callable[[], float | None]) -> None:
        """Persist the growth of a per-process cumulative number (e.g. cache hits) as counter
        ``name``: at each flush the increase since the previous flush is added."""
        self._cumulative[name] = read

    def add_gauge_source(self, read: Callable[[], dict[str, float]]) -> None:
        """Per-process gauges read at each flush (pool usage, memory)."""
        self._gauge_sources.append(read)

    # ------------------------------------------------------------------ persistence

    def _start_thread(self) -> None:
        if self.path is None or self._closed:
            return
        with self._flush_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="ephemera-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._stop.wait(self.flush_seconds)
            self._stop.clear()
            if self._closed:
                break
            self.flush()

    def _take(self) -> tuple[list[tuple[float, str, float]], dict[str, float], dict[str, Any]]:
        with self._lock:
            samples, self._samples = self._samples, []
            counts, self._counts = self._counts, {}
            gauges, self._gauges = self._gauges, {}
        for name, read in list(self._cumulative.items()):
            try:
                value = read()
            except Exception:  # noqa: BLE001 - a source failing is not our failure
                continue
            if value is None:
                continue
            before = self._cumulative_seen.get(name, 0.0)
            if value > before:
                counts[name] = counts.get(name, 0.0) + value - before
            self._cumulative_seen[name] = value
        now = time.time()
        # Source gauges (pool, memory) describe the process beside its activity: written with
        # samples or counts (and once when first seen), never alone, so an idle process writes
        # nothing even as its pool settles or its memory moves.
        for source in self._gauge_sources:
            try:
                for name, value in source().items():
                    if samples or counts or name not in self._gauges_seen:
                        gauges[name] = (float(value), now, self.pid)
            except Exception:  # noqa: BLE001 - a source failing is not our failure
                log.debug("a gauge source failed", exc_info=True)
                continue
        self._gauges_seen.update(gauges)
        return samples, counts, gauges

    def flush(self) -> None:
        """Write what was recorded since the last flush (one transaction). Never raises."""
        if not self.enabled:
            return
        with self._flush_lock:
            samples, counts, gauges = self._take()
            if self.path is None:
                self._memory_samples.extend(samples)
                del self._memory_samples[: -self.max_rows]
                for name, amount in _with_buckets(samples, counts).items():
                    self._memory_counts[name] = self._memory_counts.get(name, 0.0) + amount
                return
            if not samples and not counts and not gauges:
                return
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT INTO samples (ts, name, value, pid) VALUES (?, ?, ?, ?)",
                        [(ts, name, value, self.pid) for ts, name, value in samples],
                    )
                    conn.executemany(
                        "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                        "DO UPDATE SET value = value + excluded.value",
                        list(_with_buckets(samples, counts).items()),
                    )
                    conn.executemany(
                        "INSERT OR REPLACE INTO gauges (name, pid, value, ts) VALUES (?, ?, ?, ?)",
                        [(name, pid, value, ts) for name, (value, ts, pid) in gauges.items()],
                    )
                    self._prune(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except Exception as exc:  # noqa: BLE001 - metrics never fail the caller
                log.warning("writing metrics to %s failed: %s", self.path, exc)
                self.flush_errors += 1
                self.last_flush_error = str(exc)

    def _prune(self, conn: sqlite3.Connection) -> None:
        now = time.time()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        conn.execute("DELETE FROM samples WHERE ts < ?", (now - self.window_seconds,))
        top = conn.execute("SELECT MAX(id) FROM samples").fetchone()[0] or 0
        conn.execute("DELETE FROM samples WHERE id <= ?", (top - self.max_rows,))
        conn.execute("DELETE FROM gauges WHERE pid != 0 AND ts < ?", (now - 86400,))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self.path is not None
            self._conn = _connect(self.path)
        return self._conn

    def close(self) -> None:
        """Flush and stop the flusher thread (the engine calls this when it closes)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._stop.set()
        with self._flush_lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------ reading

    def read(self, *, series: int = 60) -> MetricsData:
        """Everything recorded by every process (flushes this one's buffer first)."""
        self.flush()
        if self.path is None:
            return _read_memory(self, series)
        return read_metrics(self.path, series=series)


def _close_at_exit(ref: weakref.ref[MetricsRecorder]) -> None:
    recorder = ref()
    if recorder is not None:
        recorder.close()


def _with_buckets(
    samples: Iterable[tuple[float, str, float]], counts: dict[str, float]
) -> dict[str, float]:
    """Counters plus the cumulative histogram buckets, sums and counts of ``samples``."""
    out = dict(counts)
    for _ts, name, value in samples:
        key = _bucket_key(name, bucket_bound(value))
        out[key] = out.get(key, 0.0) + 1
        out[f"hsum|{name}"] = out.get(f"hsum|{name}", 0.0) + value
        out[f"hcount|{name}"] = out.get(f"hcount|{name}", 0.0) + 1
    return out


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Quantiles (ms) over the newest observations of one metric, plus all-time count/sum."""

    name: str
    window: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    total_count: int
    total_sum_ms: float
    last_at: float | None


@dataclass(frozen=True, slots=True)
class MetricsData:
    """What was read from ``metrics.db``: latency summaries, counters, gauges, recent series."""

    latency: dict[str, LatencySummary]
    counters: dict[str, float]
    histograms: dict[str, dict[float, float]]  # name -> bound (ms) -> count in that bucket
    gauges: dict[str, dict[int, tuple[float, float]]]  # name -> pid -> (value, ts)
    series: dict[str, list[float]]  # name -> newest observations, oldest first

    def counter(self, name: str) -> float:
        return self.counters.get(name, 0.0)


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _summaries(
    values_by_name: dict[str, list[float]], counters: dict[str, float], last: dict[str, float]
) -> dict[str, LatencySummary]:
    out: dict[str, LatencySummary] = {}
    for name, values in values_by_name.items():
        ordered = sorted(values)
        out[name] = LatencySummary(
            name=name,
            window=len(ordered),
            p50=round(quantile(ordered, 0.50), 3),
            p95=round(quantile(ordered, 0.95), 3),
            p99=round(quantile(ordered, 0.99), 3),
            max=round(ordered[-1], 3) if ordered else 0.0,
            mean=round(sum(ordered) / len(ordered), 3) if ordered else 0.0,
            total_count=int(counters.get(f"hcount|{name}", len(ordered))),
            total_sum_ms=round(counters.get(f"hsum|{name}", sum(ordered)), 3),
            last_at=last.get(name),
        )
    return out


def _split_counters(
    raw: dict[str, float],
) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    counters: dict[str, float] = {}
    hist: dict[str, dict[float, float]] = {}
    for key, value in raw.items():
        if key.startswith("h|"):
            _, name, bound = key.split("|", 2)
            hist.setdefault(name, {})[math.inf if bound == "+Inf" else float(bound)] = value
        else:
            counters[key] = value
    return counters, hist


def read_metrics(path: Path, *, series: int = 60, limit: int = QUANTILE_SAMPLES) -> MetricsData:
    """Read ``metrics.db`` (empty data when it does not exist yet)."""
    if not path.exists():
        return MetricsData({}, {}, {}, {}, {})
    conn = _connect(path)
    try:
        cutoff = time.time() - WINDOW_SECONDS
        names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM samples")]
        values: dict[str, list[float]] = {}
        recent: dict[str, list[float]] = {}
        last: dict[str, float] = {}
        for name in names:
            rows = conn.execute(
                "SELECT value, ts FROM samples WHERE name = ? AND ts >= ? ORDER BY id DESC LIMIT ?",
                (name, cutoff, limit),
            ).fetchall()
            if not rows:
                continue
            values[name] = [r[0] for r in rows]
            recent[name] = [r[0] for r in reversed(rows[:series])]
            last[name] = rows[0][1]
        raw = {r[0]: r[1] for r in conn.execute("SELECT name, value FROM counters")}
        gauges: dict[str, dict[int, tuple[float, float]]] = {}
        for name, pid, value, ts in conn.execute("SELECT name, pid, value, ts FROM gauges"):
            gauges.setdefault(name, {})[int(pid)] = (float(value), float(ts))
    finally:
        conn.close()
    counters, hist = _split_counters(raw)
    return MetricsData(_summaries(values, raw, last), counters, hist, gauges, recent)


def _read_memory(recorder: MetricsRecorder, series: int) -> MetricsData:
    values: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    for ts, name, value in recorder._memory_samples:
        values.setdefault(name, []).append(value)
        last[name] = ts
    recent = {name: vals[-series:] for name, vals in values.items()}
    trimmed = {name: vals[-QUANTILE_SAMPLES:] for name, vals in values.items()}
    counters, hist = _split_counters(recorder._memory_counts)
    return MetricsData(
        _summaries(trimmed, recorder._memory_counts, last), counters, hist, {}, recent
    )
