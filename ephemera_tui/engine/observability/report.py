"""Everything ``ephemera stats`` and the status screen show, read in one call."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import Engine

from .instrument import dir_bytes, pid_alive, pool_stats, process_memory
from .recorder import INDEX_RECALL, METRICS_FILE, MetricsRecorder

# ---------------------------------------------------------------------------- the report


def collect(engine: Engine, *, series: int = 60) -> dict[str, Any]:
    """Every metric as plain JSON-able data: what ``ephemera stats --json`` shows under
    ``metrics`` and the app's status screen draws."""
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is None:
        recorder = MetricsRecorder(engine.settings.data_dir / METRICS_FILE)
    data = recorder.read(series=series)
    outbox = engine.store.outbox_summary()
    hits, misses = data.counter("cache.hits"), data.counter("cache.misses")
    embedder = engine.loaded_embedder
    live_cache = embedder.stats() if embedder is not None else None
    processes: list[dict[str, Any]] = []
    by_pid: dict[int, dict[str, Any]] = {}
    for name, per_pid in data.gauges.items():
        for pid, (value, ts) in per_pid.items():
            if pid == 0:
                continue  # shared facts, below; a live pid's gauges are current
            by_pid.setdefault(pid, {"pid": pid, "updated_at": ts})[name] = value
            by_pid[pid]["updated_at"] = max(by_pid[pid]["updated_at"], ts)
    for pid, facts in sorted(by_pid.items()):
        if pid != os.getpid() and pid_alive(pid):
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
            "vector_disk_bytes": dir_bytes(engine.vectors_path)
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
