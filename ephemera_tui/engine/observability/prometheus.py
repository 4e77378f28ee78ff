"""The Prometheus exposition: one collector over the recorded metrics, and a /metrics server."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import Engine

from .instrument import pid_alive, pool_stats, process_memory
from .recorder import (
    BUCKETS_MS,
    INDEX_RECALL,
    METRICS_FILE,
    QUANTILE_SAMPLES,
    MetricsRecorder,
    read_metrics,
)

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
            for pid, (value, _ts) in data.gauges.get("process.rss_bytes", {}).items():
                if pid not in (0, os.getpid()) and pid_alive(pid):
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
