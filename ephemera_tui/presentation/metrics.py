"""The engine's own figures as text: the metrics block of ``ephemera stats`` and the short
"System" section of ``ephemera report``. Every figure goes through :mod:`.numbers`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .numbers import count, milliseconds, percent, ratio, size
from .times import duration

if TYPE_CHECKING:
    from ..engine.observability.report import MetricsReport


def _figure(value: int | None) -> str:
    return "-" if value is None else count(value)


def error_counts(errors: Mapping[str, int]) -> str:
    """``search 2, vector_upsert 1`` (by name), or ``none``."""
    return ", ".join(f"{op} {count(n)}" for op, n in sorted(errors.items())) or "none"


def format_metrics(metrics: MetricsReport) -> list[str]:
    """The metrics as aligned text lines (``ephemera stats``): latency per operation, the
    cache, pool, memory per process, outbox, index recall and errors."""
    lines = ["", "latency (ms)             p50      p95      p99    count"]
    for name, s in metrics.latency_ms.items():
        lines.append(
            f"  {name:<20} {milliseconds(s.p50):>8} {milliseconds(s.p95):>8} "
            f"{milliseconds(s.p99):>8} {count(s.count):>8}"
        )
    if not metrics.latency_ms:
        lines.append("  (nothing recorded yet)")
    cache = metrics.embedding_cache
    lines.append("")
    lines.append(
        f"embedding cache: {count(cache.hits)} hits, {count(cache.misses)} misses "
        f"({percent(cache.hit_rate)})"
    )
    pool = metrics.pool
    lines.append(
        f"sql pool: {_figure(pool.checked_out)} checked out, {_figure(pool.open)} open,"
        f" size {_figure(pool.size)} (overflow {_figure(pool.overflow)})"
    )
    outbox = metrics.outbox
    lines.append(f"outbox: {count(outbox.size)} pending, lag {duration(outbox.lag_s)}")
    lines.append(f"memory: {size(metrics.process.rss_bytes)} (this process)")
    for proc in metrics.processes:
        lines.append(
            f"        {size(proc.rss_bytes)} (pid {proc.pid}, pool "
            f"{count(proc.gauges.get('pool.checked_out', 0))}/"
            f"{count(proc.gauges.get('pool.size', 0))})"
        )
    index = metrics.index
    if index.recall_at_10 is None:
        lines.append("index recall@10: not measured yet (ephemera worker measures it)")
    else:
        lines.append(
            f"index recall@10: {ratio(index.recall_at_10)} over {_figure(index.sample)} queries "
            f"(index {milliseconds(index.approx_ms_p50, unit=True)}, "
            f"exact {milliseconds(index.exact_ms_p50, unit=True)})"
        )
    lines.append(f"errors: {error_counts(metrics.errors)}")
    return lines


def system_lines(metrics: MetricsReport) -> list[str]:
    """The few figures a patterns report ends with: search latency, the cache hit rate, index
    recall and errors."""
    lines = []
    total = metrics.latency_ms.get("search.total")
    if total is not None:
        lines.append(
            f"search: p50 {milliseconds(total.p50, unit=True)}, "
            f"p95 {milliseconds(total.p95, unit=True)}, "
            f"p99 {milliseconds(total.p99, unit=True)} over {count(total.window)} recent searches"
        )
    if metrics.embedding_cache.hit_rate is not None:
        lines.append(f"embedding cache hit rate {percent(metrics.embedding_cache.hit_rate)}")
    if metrics.index.recall_at_10 is not None:
        lines.append(f"vector index recall@10 {ratio(metrics.index.recall_at_10)}")
    lines.append(f"errors: {error_counts(metrics.errors)}")
    return lines
