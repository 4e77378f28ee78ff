"""Everything ``ephemera stats`` and the status screen show, read in one call: :func:`collect`
returns a :class:`MetricsReport` of frozen records; ``to_dict()`` is the JSON of
``ephemera stats --json`` under ``metrics``. The text of it lives in
:mod:`ephemera_tui.presentation.metrics`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import CacheStats

if TYPE_CHECKING:
    from ..core import Engine

from .instrument import dir_bytes, pid_alive, pool_stats, process_memory
from .recorder import INDEX_RECALL, METRICS_FILE, MetricsRecorder

# ---------------------------------------------------------------------------- the records


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    """Quantiles (ms) over the newest ``window`` observations of one operation, its all-time
    ``count`` and when it last ran."""

    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    window: int
    count: int
    last_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "max": self.max,
            "mean": self.mean,
            "window": self.window,
            "count": self.count,
            "last_at": self.last_at,
        }


@dataclass(frozen=True, slots=True)
class CacheFigures:
    """The embedding cache over every process (``hit_rate`` None before any lookup), and this
    process's live counters (None until its model is loaded)."""

    hits: int
    misses: int
    hit_rate: float | None
    this_process: CacheStats | None

    def to_dict(self) -> dict[str, Any]:
        live = self.this_process
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "this_process": None
            if live is None
            else {"hits": live.hits, "misses": live.misses, "size": live.size},
        }


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """This process's SQL connection pool; a figure the pool does not report is None."""

    size: int | None = None
    checked_out: int | None = None
    checked_in: int | None = None
    overflow: int | None = None
    open: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The figures the pool reports (absent ones are left out)."""
        figures = {
            "size": self.size,
            "checked_out": self.checked_out,
            "checked_in": self.checked_in,
            "overflow": self.overflow,
            "open": self.open,
        }
        return {name: value for name, value in figures.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """This process: its id and resident memory (None where the platform does not say)."""

    pid: int
    rss_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "rss_bytes": self.rss_bytes}


@dataclass(frozen=True, slots=True)
class OtherProcess:
    """Another live ephemera process: the gauges it last wrote (``process.rss_bytes``,
    ``pool.size``, ``pool.checked_out`` …) and when."""

    pid: int
    updated_at: float
    gauges: Mapping[str, float]

    @property
    def rss_bytes(self) -> float | None:
        return self.gauges.get("process.rss_bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "updated_at": self.updated_at, **self.gauges}


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """Vector writes waiting: how many, the oldest one's age, the most attempts, last error."""

    size: int
    lag_s: float | None
    max_attempts: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "lag_s": self.lag_s,
            "max_attempts": self.max_attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class IndexFigures:
    """The vector index's quality (recall@10 against exact search, when last measured, over
    how many queries, and both latencies) and the embedded store's size on disk."""

    recall_at_10: float | None
    measured_at: float | None
    sample: int | None
    exact_ms_p50: float | None
    approx_ms_p50: float | None
    vector_disk_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "recall_at_10": self.recall_at_10,
            "measured_at": self.measured_at,
            "sample": self.sample,
            "exact_ms_p50": self.exact_ms_p50,
            "approx_ms_p50": self.approx_ms_p50,
            "vector_disk_bytes": self.vector_disk_bytes,
        }


@dataclass(frozen=True, slots=True)
class MetricsReport:
    """Every metric from every process: latency per operation, errors and rejected input per
    operation, the cache, pool, memory, outbox and index, and the newest latencies (ms) per
    operation for sparklines."""

    latency_ms: Mapping[str, LatencyFigures]
    errors: Mapping[str, int]
    invalid: Mapping[str, int]
    error_rate: Mapping[str, float]
    embedding_cache: CacheFigures
    pool: PoolFigures
    process: ProcessFigures
    processes: tuple[OtherProcess, ...]
    outbox: OutboxFigures
    index: IndexFigures
    last_sync_at: float | None
    series_ms: Mapping[str, tuple[float, ...]]
    metrics_file: str | None
    flush_errors: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``ephemera stats --json`` under ``metrics``."""
        return {
            "latency_ms": {name: s.to_dict() for name, s in self.latency_ms.items()},
            "errors": dict(self.errors),
            "invalid": dict(self.invalid),
            "error_rate": dict(self.error_rate),
            "embedding_cache": self.embedding_cache.to_dict(),
            "pool": self.pool.to_dict(),
            "process": self.process.to_dict(),
            "processes": [p.to_dict() for p in self.processes],
            "outbox": self.outbox.to_dict(),
            "index": self.index.to_dict(),
            "last_sync_at": self.last_sync_at,
            "series_ms": {name: list(values) for name, values in self.series_ms.items()},
            "metrics_file": self.metrics_file,
            "flush_errors": self.flush_errors,
        }


# ---------------------------------------------------------------------------- the report


def collect(engine: Engine, *, series: int = 60) -> MetricsReport:
    """Every metric, from every process's records in ``metrics.db`` and this process: what
    ``ephemera stats`` shows and the app's status screen draws."""
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is None:
        recorder = MetricsRecorder(engine.settings.data_dir / METRICS_FILE)
    data = recorder.read(series=series)
    outbox = engine.store.outbox_summary()
    hits, misses = data.counter("cache.hits"), data.counter("cache.misses")
    embedder = engine.loaded_embedder
    live = embedder.stats() if embedder is not None else None
    by_pid: dict[int, tuple[float, dict[str, float]]] = {}
    for name, per_pid in data.gauges.items():
        for pid, (value, ts) in per_pid.items():
            if pid == 0:
                continue  # shared facts, below; a live pid's gauges are current
            updated, gauges = by_pid.get(pid, (ts, {}))
            gauges[name] = value
            by_pid[pid] = (max(updated, ts), gauges)
    processes = tuple(
        OtherProcess(pid, updated, gauges)
        for pid, (updated, gauges) in sorted(by_pid.items())
        if pid != os.getpid() and pid_alive(pid)
    )
    recall = data.gauges.get(INDEX_RECALL, {}).get(0)
    shared = {name: per_pid[0][0] for name, per_pid in data.gauges.items() if 0 in per_pid}
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
    sync_last = data.gauges.get("sync.last_at", {}).get(0)
    sample = shared.get("index.recall_sample")
    return MetricsReport(
        latency_ms={
            name: LatencyFigures(
                p50=s.p50,
                p95=s.p95,
                p99=s.p99,
                max=s.max,
                mean=s.mean,
                window=s.window,
                count=s.total_count,
                last_at=s.last_at,
            )
            for name, s in sorted(data.latency.items())
        },
        errors=errors,
        invalid=invalid,
        error_rate={
            op: round(n / (n + ops.get(_latency_name(op), 0)), 4)
            for op, n in errors.items()
            if _latency_name(op) in ops or n
        },
        embedding_cache=CacheFigures(
            hits=int(hits),
            misses=int(misses),
            hit_rate=round(hits / (hits + misses), 4) if hits + misses else None,
            this_process=None if live is None else CacheStats(**live),
        ),
        pool=PoolFigures(**pool_stats(engine)),
        process=ProcessFigures(pid=os.getpid(), rss_bytes=process_memory()),
        processes=processes,
        outbox=OutboxFigures(
            size=outbox["pending"],
            lag_s=outbox["oldest_age_s"],
            max_attempts=outbox["max_attempts"],
            last_error=outbox["last_error"],
        ),
        index=IndexFigures(
            recall_at_10=recall[0] if recall else None,
            measured_at=recall[1] if recall else None,
            sample=None if sample is None else int(sample),
            exact_ms_p50=shared.get("index.exact_ms_p50"),
            approx_ms_p50=shared.get("index.approx_ms_p50"),
            vector_disk_bytes=dir_bytes(engine.vectors_path)
            if not engine.settings.qdrant_url
            else None,
        ),
        last_sync_at=sync_last[0] if sync_last else None,
        series_ms={
            name: tuple(round(v, 3) for v in values) for name, values in sorted(data.series.items())
        },
        metrics_file=str(recorder.path) if recorder.path else None,
        flush_errors=recorder.flush_errors,
    )


def _latency_name(op: str) -> str:
    if op == "search":
        return "search.total"
    if op == "check":
        return "op.check"
    return f"write.{op}"
