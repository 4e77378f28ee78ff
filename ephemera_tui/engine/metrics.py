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
import functools
import math
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .core import Engine

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
        for source in self._gauge_sources:
            try:
                for name, value in source().items():
                    gauges[name] = (float(value), now, self.pid)
            except Exception:  # noqa: BLE001
                continue
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


# ---------------------------------------------------------------------------- engine wiring


def open_metrics(engine: Engine) -> MetricsRecorder:
    """The recorder for an engine: ``metrics.db`` in its data directory, with the SQL query
    timer, the embedding cache and the pool/memory gauges attached.

    ``EPHEMERA_METRICS=0`` turns recording off.
    """
    enabled = os.environ.get("EPHEMERA_METRICS", "1").lower() not in ("0", "false", "off", "no")
    recorder = MetricsRecorder(engine.settings.data_dir / METRICS_FILE, enabled=enabled)
    if not enabled:
        return recorder
    ref = weakref.ref(engine)

    def cache(field: str) -> Callable[[], float | None]:
        def read() -> float | None:
            eng = ref()
            embedder = getattr(eng, "_embedder", None) if eng is not None else None
            return None if embedder is None else float(embedder.stats()[field])

        return read

    recorder.track("cache.hits", cache("hits"))
    recorder.track("cache.misses", cache("misses"))

    def process_gauges() -> dict[str, float]:
        eng = ref()
        out: dict[str, float] = {"process.rss_bytes": float(process_memory())}
        if eng is not None:
            out.update({f"pool.{k}": float(v) for k, v in pool_stats(eng).items()})
        return out

    recorder.add_gauge_source(process_gauges)
    _time_sql(engine, recorder)
    return recorder


def _time_sql(engine: Engine, recorder: MetricsRecorder) -> None:
    """Time every SQL statement (``sql.query``) and count database errors (``errors.sql``)."""
    from sqlalchemy import event

    sql_engine = engine.store.engine
    perf = time.perf_counter

    def before(conn: Any, _cursor: Any, _stmt: Any, _params: Any, _ctx: Any, _many: Any) -> None:
        conn.info.setdefault("ephemera_t0", []).append(perf())

    def after(conn: Any, _cursor: Any, _stmt: Any, _params: Any, _ctx: Any, _many: Any) -> None:
        stack = conn.info.get("ephemera_t0")
        if stack:
            recorder.observe("sql.query", (perf() - stack.pop()) * 1000)

    def failed(context: Any) -> None:
        conn = getattr(context, "connection", None)
        if conn is not None:
            stack = conn.info.get("ephemera_t0")
            if stack:
                stack.pop()
        recorder.error("sql")

    event.listen(sql_engine, "before_cursor_execute", before)
    event.listen(sql_engine, "after_cursor_execute", after)
    event.listen(sql_engine, "handle_error", failed)


def instrumented(op: str) -> Callable[[F], F]:
    """Decorate an Engine method: time it (``write.<op>``/``op.<op>``; for ``search`` the stage
    timings of its result) and count its failures (``errors.<op>``; rejected input counts as
    ``invalid.<op>``). A no-op sync (nothing to drain) is not timed."""
    from .errors import NotFoundError, ValidationError

    kind = "op" if op == "check" else "write"

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder: MetricsRecorder | None = getattr(self, "metrics", None)
            if recorder is None or not recorder.enabled:
                return func(self, *args, **kwargs)
            started = time.perf_counter()
            try:
                result = func(self, *args, **kwargs)
            except (ValidationError, NotFoundError):
                recorder.count(f"invalid.{op}")
                raise
            except Exception:
                recorder.error(op)
                raise
            ms = (time.perf_counter() - started) * 1000
            if op == "search":
                recorder.record_search(result.timings_ms, result.mode)
            elif op == "sync":
                if result.upserted or result.deleted or result.failed:
                    recorder.observe("write.sync", ms)
                    recorder.gauge("sync.last_at", time.time(), shared=True)
            else:
                recorder.observe(f"{kind}.{op}", ms)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------------------- live facts


def process_memory() -> int:
    """Resident memory of this process in bytes (the embedded Qdrant shard lives in it)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def pool_stats(engine: Engine) -> dict[str, int]:
    """The SQL connection pool: its size, connections open and checked out, and overflow (open
    connections beyond the size). SQLAlchemy's own overflow counter starts at minus the size,
    which reads as nonsense on a screen, so it is turned into these plain counts."""
    pool = engine.store.engine.pool
    calls = {
        "size": "size",
        "checked_out": "checkedout",
        "checked_in": "checkedin",
        "overflow": "overflow",
    }
    out: dict[str, int] = {}
    for key, name in calls.items():
        method = getattr(pool, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                out[key] = int(method())
    if "size" in out and "overflow" in out:
        out["open"] = max(0, out["size"] + out["overflow"])
        out["overflow"] = max(0, out["overflow"])
    return out


def _dir_bytes(path: Path) -> int | None:
    if not path.exists():
        return None
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def _alive(pid: int) -> bool:
    import psutil

    return pid == os.getpid() or psutil.pid_exists(pid)


# ---------------------------------------------------------------------------- index quality


@dataclass(frozen=True, slots=True)
class IndexQuality:
    """Recall@k of the vector index against exact search over ``sample`` stored vectors."""

    recall: float | None
    sample: int
    k: int
    approx_ms_p50: float
    exact_ms_p50: float
    measured_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_index_quality(
    engine: Engine, sample: int = 50, k: int = 10, seed: int | None = None
) -> IndexQuality | None:
    """Search the index with ``sample`` stored vectors (chosen at random) and compare its top
    ``k`` with exact search: the mean overlap is recall@k. Recorded as the shared gauge
    ``index.recall_at_10``. None while the vector store is unavailable.

    Meant for the background worker (a few hundred searches: well under a second at 100k
    points on the embedded store).
    """
    from sqlalchemy import func, select

    from .store import FRAGMENTS

    vectors = engine.vectors()
    if vectors is None:
        return None
    store = engine.store
    order = func.rand() if store.is_mysql else func.random()
    with store.read() as conn:
        ids = [
            int(r[0])
            for r in conn.execute(select(FRAGMENTS.c.id).order_by(order).limit(sample * 2))
        ]
    rng = random.Random(seed)
    rng.shuffle(ids)
    stored = vectors.vectors(ids)
    chosen = [stored[i] for i in ids if i in stored][:sample]
    approx_times: list[float] = []
    exact_times: list[float] = []
    recalls: list[float] = []
    for vector in chosen:
        t0 = time.perf_counter()
        approx = {pid for pid, _ in vectors.search(vector, k)}
        t1 = time.perf_counter()
        exact = {pid for pid, _ in vectors.search(vector, k, exact=True)}
        t2 = time.perf_counter()
        approx_times.append((t1 - t0) * 1000)
        exact_times.append((t2 - t1) * 1000)
        if exact:
            recalls.append(len(approx & exact) / len(exact))
    recall = round(sum(recalls) / len(recalls), 4) if recalls else None
    result = IndexQuality(
        recall=recall,
        sample=len(recalls),
        k=k,
        approx_ms_p50=round(quantile(sorted(approx_times), 0.5), 3),
        exact_ms_p50=round(quantile(sorted(exact_times), 0.5), 3),
        measured_at=time.time(),
    )
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is not None and recall is not None:
        recorder.gauge(INDEX_RECALL, recall, shared=True)
        recorder.gauge("index.recall_sample", len(recalls), shared=True)
        recorder.gauge("index.exact_ms_p50", result.exact_ms_p50, shared=True)
        recorder.gauge("index.approx_ms_p50", result.approx_ms_p50, shared=True)
        for ms in approx_times:
            recorder.observe("index.approx", ms)
        for ms in exact_times:
            recorder.observe("index.exact", ms)
        recorder.flush()
    return result


def maybe_measure_index_quality(
    engine: Engine, every_seconds: float = 3600.0, sample: int = 50
) -> IndexQuality | None:
    """Measure recall@10 if the last measurement (by any process) is older than
    ``every_seconds``: what the background worker calls after each run."""
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is not None and recorder.path is not None:
        data = read_metrics(recorder.path, series=0, limit=1)
        last = data.gauges.get(INDEX_RECALL, {}).get(0)
        if last is not None and time.time() - last[1] < every_seconds:
            return None
    return measure_index_quality(engine, sample=sample)


def sample_after_run(
    engine: Engine, every_seconds: float = 3600.0, release: bool = False
) -> IndexQuality | None:
    """What the background worker calls after each run: measure recall@10 when due (never
    raises), then close the embedded vector store again if ``release`` (other processes
    take turns with it)."""
    try:
        return maybe_measure_index_quality(engine, every_seconds)
    except Exception:  # noqa: BLE001 - a sampling failure must not stop the worker
        engine.metrics.error("index_quality")
        return None
    finally:
        if release:
            with contextlib.suppress(Exception):
                engine.release_vectors()


# ---------------------------------------------------------------------------- the report


def collect(engine: Engine, *, series: int = 60) -> dict[str, Any]:
    """Every metric as plain JSON-able data: what ``ephemera stats --json`` shows under
    ``metrics`` and the app's status screen draws."""
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is None:
        recorder = MetricsRecorder(engine.settings.data_dir / METRICS_FILE)
    data = recorder.read(series=series)
    now = time.time()
    outbox = engine.store.outbox_summary()
    hits, misses = data.counter("cache.hits"), data.counter("cache.misses")
    embedder = getattr(engine, "_embedder", None)
    live_cache = embedder.stats() if embedder is not None else None
    processes: list[dict[str, Any]] = []
    by_pid: dict[int, dict[str, Any]] = {}
    for name, per_pid in data.gauges.items():
        for pid, (value, ts) in per_pid.items():
            if pid == 0 or now - ts > GAUGE_STALE_SECONDS:
                continue
            by_pid.setdefault(pid, {"pid": pid, "updated_at": ts})[name] = value
            by_pid[pid]["updated_at"] = max(by_pid[pid]["updated_at"], ts)
    for pid, facts in sorted(by_pid.items()):
        if pid != os.getpid() and _alive(pid):
            processes.append(facts)
    recall = data.gauges.get(INDEX_RECALL, {}).get(0)
    shared = {name: per_pid[0] for name, per_pid in data.gauges.items() if 0 in per_pid}
    errors = {
        k.removeprefix("errors."): int(v)
        for k, v in data.counters.items()
        if k.startswith("errors.")
    }
    invalid = {
        k.removeprefix("invalid."): int(v)
        for k, v in data.counters.items()
        if k.startswith("invalid.")
    }
    ops = {name: summary.total_count for name, summary in data.latency.items()}
    sync_last = shared.get("sync.last_at")
    return {
        "latency_ms": {
            name: {
                "p50": s.p50,
                "p95": s.p95,
                "p99": s.p99,
                "max": s.max,
                "mean": s.mean,
                "window": s.window,
                "count": s.total_count,
                "last_at": s.last_at,
            }
            for name, s in sorted(data.latency.items())
        },
        "errors": errors,
        "invalid": invalid,
        "error_rate": {
            op: round(n / (n + ops.get(_latency_name(op), 0)), 4)
            for op, n in errors.items()
            if _latency_name(op) in ops or n
        },
        "embedding_cache": {
            "hits": int(hits),
            "misses": int(misses),
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
            "this_process": live_cache,
        },
        "pool": pool_stats(engine),
        "process": {"pid": os.getpid(), "rss_bytes": process_memory()},
        "processes": processes,
        "outbox": {
            "size": outbox["pending"],
            "lag_s": outbox["oldest_age_s"],
            "max_attempts": outbox["max_attempts"],
            "last_error": outbox["last_error"],
        },
        "index": {
            "recall_at_10": recall[0] if recall else None,
            "measured_at": recall[1] if recall else None,
            "sample": int(shared["index.recall_sample"][0])
            if "index.recall_sample" in shared
            else None,
            "exact_ms_p50": shared["index.exact_ms_p50"][0]
            if "index.exact_ms_p50" in shared
            else None,
            "approx_ms_p50": shared["index.approx_ms_p50"][0]
            if "index.approx_ms_p50" in shared
            else None,
            "vector_disk_bytes": _dir_bytes(engine.vectors_path)
            if not engine.settings.qdrant_url
            else None,
        },
        "last_sync_at": sync_last[0] if sync_last else None,
        "series_ms": {
            name: [round(v, 3) for v in values] for name, values in sorted(data.series.items())
        },
        "metrics_file": str(recorder.path) if recorder.path else None,
        "flush_errors": recorder.flush_errors,
    }


def _latency_name(op: str) -> str:
    if op == "search":
        return "search.total"
    if op == "check":
        return "op.check"
    return f"write.{op}"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 10:
        return f"{value:.0f}ms"
    return f"{value:.2f}ms"


def _fmt_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GB"


def format_metrics(metrics: dict[str, Any]) -> list[str]:
    """The metrics as aligned text lines (``ephemera stats``)."""
    lines = ["", "latency (ms)             p50      p95      p99    count"]
    for name, s in metrics["latency_ms"].items():
        lines.append(
            f"  {name:<20} {_fmt_ms(s['p50']):>8} {_fmt_ms(s['p95']):>8} "
            f"{_fmt_ms(s['p99']):>8} {s['count']:>8}"
        )
    if not metrics["latency_ms"]:
        lines.append("  (nothing recorded yet)")
    cache = metrics["embedding_cache"]
    rate = "-" if cache["hit_rate"] is None else f"{cache['hit_rate']:.0%}"
    lines.append("")
    lines.append(f"embedding cache: {cache['hits']} hits, {cache['misses']} misses ({rate})")
    pool = metrics["pool"]
    lines.append(
        f"sql pool: {pool.get('checked_out', '-')} checked out, {pool.get('open', '-')} open,"
        f" size {pool.get('size', '-')} (overflow {pool.get('overflow', '-')})"
    )
    outbox = metrics["outbox"]
    lag = "-" if outbox["lag_s"] is None else f"{outbox['lag_s']:.1f}s"
    lines.append(f"outbox: {outbox['size']} pending, lag {lag}")
    lines.append(f"memory: {_fmt_bytes(metrics['process']['rss_bytes'])} (this process)")
    for proc in metrics["processes"]:
        lines.append(
            f"        {_fmt_bytes(proc.get('process.rss_bytes'))} (pid {proc['pid']}, pool "
            f"{int(proc.get('pool.checked_out', 0))}/{int(proc.get('pool.size', 0))})"
        )
    index = metrics["index"]
    if index["recall_at_10"] is None:
        lines.append("index recall@10: not measured yet (ephemera worker measures it)")
    else:
        lines.append(
            f"index recall@10: {index['recall_at_10']:.3f} over {index['sample']} queries "
            f"(index {_fmt_ms(index['approx_ms_p50'])}, exact {_fmt_ms(index['exact_ms_p50'])})"
        )
    errors = metrics["errors"]
    lines.append(
        "errors: " + (", ".join(f"{op} {n}" for op, n in sorted(errors.items())) or "none")
    )
    return lines


# ---------------------------------------------------------------------------- Prometheus


def _collector(engine: Engine) -> Any:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    class EphemeraCollector:
        def collect(self) -> Iterable[Any]:
            recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
            data = (
                recorder.read(series=0)
                if recorder is not None
                else read_metrics(engine.settings.data_dir / METRICS_FILE, series=0)
            )
            families: dict[str, Any] = {}

            def histogram(family: str, doc: str, label: str) -> Any:
                if family not in families:
                    families[family] = HistogramMetricFamily(family, doc, labels=[label])
                return families[family]

            def quantiles(family: str, doc: str, label: str) -> Any:
                if family not in families:
                    families[family] = GaugeMetricFamily(family, doc, labels=[label, "quantile"])
                return families[family]

            for name, buckets in sorted(data.histograms.items()):
                group, _, part = name.partition(".")
                family, label, doc = {
                    "search": (
                        "ephemera_search_stage_seconds",
                        "stage",
                        "Search latency per stage (all processes).",
                    ),
                    "browse": ("ephemera_browse_seconds", "stage", "Browsing (no query text)."),
                    "write": ("ephemera_write_seconds", "op", "Write latency per operation."),
                    "op": ("ephemera_operation_seconds", "op", "Maintenance operation latency."),
                    "sql": ("ephemera_sql_query_seconds", "kind", "SQL statement latency."),
                    "index": (
                        "ephemera_index_search_seconds",
                        "mode",
                        "Vector searches of the index-quality sampler.",
                    ),
                }.get(group, ("ephemera_other_seconds", "name", "Other latencies."))
                if group not in ("search", "browse", "write", "op", "sql", "index"):
                    part = name
                cumulative = 0.0
                points: list[tuple[str, float]] = []
                for bound in (*BUCKETS_MS, math.inf):
                    cumulative += buckets.get(float(bound), 0.0)
                    key = "+Inf" if math.isinf(bound) else repr(bound / 1000)
                    points.append((key, cumulative))
                histogram(family, doc, label).add_metric(
                    [part], points, data.counter(f"hsum|{name}") / 1000
                )
                s = data.latency.get(name)
                if s is not None:
                    recent = quantiles(
                        family.replace("_seconds", "_recent_seconds"),
                        f"p50/p95/p99 over the newest {QUANTILE_SAMPLES} observations "
                        "(rolling window, all processes).",
                        label,
                    )
                    for q, value in (("0.5", s.p50), ("0.95", s.p95), ("0.99", s.p99)):
                        recent.add_metric([part, q], value / 1000)
            yield from families.values()

            errors = CounterMetricFamily(
                "ephemera_errors", "Failures per operation.", labels=["op"]
            )
            invalid = CounterMetricFamily(
                "ephemera_rejected", "Rejected input per operation.", labels=["op"]
            )
            for key, value in sorted(data.counters.items()):
                if key.startswith("errors."):
                    errors.add_metric([key.removeprefix("errors.")], value)
                elif key.startswith("invalid."):
                    invalid.add_metric([key.removeprefix("invalid.")], value)
            yield errors
            yield invalid
            cache = CounterMetricFamily(
                "ephemera_embedding_cache", "Embedding cache lookups.", labels=["result"]
            )
            cache.add_metric(["hit"], data.counter("cache.hits"))
            cache.add_metric(["miss"], data.counter("cache.misses"))
            yield cache

            pool = GaugeMetricFamily(
                "ephemera_sql_pool_connections",
                "SQL connection pool of this process.",
                labels=["state"],
            )
            for key, value in pool_stats(engine).items():
                pool.add_metric([key], value)
            yield pool
            rss = GaugeMetricFamily(
                "ephemera_process_resident_bytes",
                "Resident memory of ephemera processes.",
                labels=["pid"],
            )
            rss.add_metric([str(os.getpid())], process_memory())
            now = time.time()
            for pid, (value, ts) in data.gauges.get("process.rss_bytes", {}).items():
                if pid not in (0, os.getpid()) and now - ts < GAUGE_STALE_SECONDS and _alive(pid):
                    rss.add_metric([str(pid)], value)
            yield rss
            outbox = engine.store.outbox_summary()
            yield GaugeMetricFamily(
                "ephemera_outbox_size", "Memories waiting for vectors.", value=outbox["pending"]
            )
            yield GaugeMetricFamily(
                "ephemera_outbox_lag_seconds",
                "Age of the oldest outbox entry.",
                value=outbox["oldest_age_s"] or 0.0,
            )
            recall = data.gauges.get(INDEX_RECALL, {}).get(0)
            if recall is not None:
                yield GaugeMetricFamily(
                    "ephemera_index_recall_at_10",
                    "Recall@10 of the vector index against exact search.",
                    value=recall[0],
                )
            yield GaugeMetricFamily(
                "ephemera_memories", "Memories stored.", value=engine.store.count()
            )

    return EphemeraCollector()


def registry_for(engine: Engine) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_collector(engine))
    return registry


def prometheus_text(engine: Engine) -> str:
    """All metrics in the Prometheus text exposition format."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(engine)).decode("utf-8")


def serve_metrics(engine: Engine, port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``addr:port`` (localhost by default) from a daemon thread.

    Returns the server (``.shutdown()`` stops it). ``ephemera worker --metrics-port N``.
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=registry_for(engine))
    return server
