"""Metrics move when work happens, outlive the process, and export as valid Prometheus text."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ephemera_tui.engine import (
    DatabaseError,
    Draft,
    Engine,
    NotFoundError,
    Settings,
    VectorStoreError,
)
from ephemera_tui.engine.observability.prometheus import prometheus_text, serve_metrics
from ephemera_tui.engine.observability.quality import (
    maybe_measure_index_quality,
    measure_index_quality,
)
from ephemera_tui.engine.observability.recorder import (
    INDEX_RECALL,
    MetricsRecorder,
    bucket_bound,
    quantile,
    read_metrics,
)
from ephemera_tui.engine.observability.report import collect
from ephemera_tui.presentation.metrics import format_metrics
from tests.helpers import EPHEMERA, invoke_ephemera, run_ephemera


def seed(engine: Engine, n: int = 12) -> None:
    words = ["coffee", "garden", "river", "lisbon", "sketch", "planning"]
    for i in range(n):
        engine.add(
            Draft(content=f"{words[i % len(words)]} memory number {i}", tags=(words[i % 3],))
        )


def latency_count(engine: Engine, name: str) -> int:
    data = engine.metrics.read()
    summary = data.latency.get(name)
    return 0 if summary is None else summary.total_count


# ---------------------------------------------------------------------------- recorder


def test_quantiles_and_buckets() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert quantile(values, 0.5) == 50
    assert quantile(values, 0.95) == 95
    assert quantile(values, 0.99) == 99
    assert quantile([], 0.5) == 0.0
    assert bucket_bound(0.1) == 0.25
    assert bucket_bound(3) == 5
    assert bucket_bound(10**6) == float("inf")


def test_recorder_persists_in_batches_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    recorder = MetricsRecorder(path)
    for ms in range(1, 101):
        recorder.observe("search.total", float(ms))
    recorder.error("search")
    recorder.gauge("index.recall_at_10", 0.9, shared=True)
    recorder.close()
    data = read_metrics(path)
    total = data.latency["search.total"]
    assert (total.p50, total.p95, total.p99, total.total_count) == (50, 95, 99, 100)
    assert data.counter("errors.search") == 1
    assert data.gauges[INDEX_RECALL][0][0] == 0.9
    assert sum(data.histograms["search.total"].values()) == 100
    # A second process adds to the same file: counters add up, the window keeps both.
    other = MetricsRecorder(path)
    other.observe("search.total", 1000.0)
    other.error("search")
    other.close()
    data = read_metrics(path)
    assert data.latency["search.total"].total_count == 101
    assert data.latency["search.total"].max == 1000
    assert data.counter("errors.search") == 2


def test_an_idle_recorder_writes_nothing_while_its_gauges_move(tmp_path: Path) -> None:
    """A process nobody uses must not write: its pool and memory gauges go to disk with its
    activity (an open app rewrote metrics.db when its pool settled, 40 s after start)."""
    path = tmp_path / "metrics.db"
    pool = {"pool.checked_in": 1.0, "process.rss_bytes": 100e6}
    recorder = MetricsRecorder(path)
    recorder.add_gauge_source(lambda: dict(pool))
    recorder.observe("search.total", 3.0)
    recorder.flush()
    assert read_metrics(path).gauges["pool.checked_in"][recorder.pid][0] == 1.0

    def on_disk() -> tuple[int, ...]:
        return tuple(
            f.stat().st_mtime_ns + f.stat().st_size for f in sorted(tmp_path.glob("metrics.db*"))
        )

    before = on_disk()
    pool.update({"pool.checked_in": 2.0, "process.rss_bytes": 180e6})
    for _ in range(3):
        recorder.flush()
    assert on_disk() == before
    recorder.observe("search.total", 4.0)  # activity again: the gauges go with it
    recorder.flush()
    recorder.close()
    assert read_metrics(path).gauges["pool.checked_in"][recorder.pid][0] == 2.0


def test_disabled_recorder_records_nothing(tmp_path: Path) -> None:
    recorder = MetricsRecorder(tmp_path / "m.db", enabled=False)
    recorder.observe("search.total", 1.0)
    recorder.close()
    assert not (tmp_path / "m.db").exists()


def test_recording_costs_microseconds(tmp_path: Path) -> None:
    recorder = MetricsRecorder(tmp_path / "m.db")
    timings = {"parse": 0.1, "keyword": 1.0, "embed": 2.0, "vector": 3.0, "enrich": 1.0}
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        recorder.record_search(timings, "hybrid")
    per_search_us = (time.perf_counter() - started) / n * 1e6
    recorder.close()
    assert per_search_us < 50, per_search_us  # typically ~2 µs
    assert read_metrics(tmp_path / "m.db").latency["search.vector"].total_count == n


# ---------------------------------------------------------------------------- engine


def test_search_increments_stage_histograms(engine: Engine) -> None:
    seed(engine)
    before = latency_count(engine, "search.total")
    result = engine.search("coffee")
    assert result.mode == "hybrid"
    data = engine.metrics.read()
    for stage in ("parse", "keyword", "embed", "vector", "enrich", "total"):
        assert data.latency[f"search.{stage}"].total_count >= 1, stage
    assert data.latency["search.total"].total_count == before + 1
    assert data.latency["search.total"].p50 > 0
    assert sum(data.histograms["search.total"].values()) == before + 1
    engine.search("")  # browsing is timed apart from searching
    data = engine.metrics.read()
    assert data.latency["search.total"].total_count == before + 1
    assert data.latency["browse.total"].total_count == 1
    assert data.latency["sql.query"].total_count > 0


def test_writes_are_timed(engine: Engine) -> None:
    memory = engine.add(Draft(content="a first memory"))
    engine.update(memory.id, Draft(content="a first memory, edited"))
    engine.delete(memory.id)
    data = engine.metrics.read()
    assert data.latency["write.add"].total_count == 1
    assert data.latency["write.update"].total_count == 1
    assert data.latency["write.delete"].total_count == 1
    # A sync with nothing to do is not a write (the app's loop calls it every second).
    engine.sync()
    assert "write.sync" not in engine.metrics.read().latency


def test_failing_vector_store_raises_error_count(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(engine, 3)
    vectors = engine.vectors()
    assert vectors is not None

    def broken(*_args: object, **_kwargs: object) -> None:
        raise VectorStoreError("vector store exploded")

    monkeypatch.setattr(vectors, "search", broken)
    monkeypatch.setattr(vectors, "upsert", broken)
    result = engine.search("coffee")
    assert result.mode == "hybrid" and result.notices  # answered by keyword, said so
    engine.add(Draft(content="written while the vector store is down"))
    errors = collect(engine).to_dict()["errors"]
    assert errors["vector_search"] == 1
    assert errors["vector_upsert"] == 1
    assert collect(engine).to_dict()["outbox"]["size"] == 1


def test_failing_database_counts_search_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise DatabaseError("database unavailable: gone")

    monkeypatch.setattr(engine.store, "keyword_search", broken)
    with pytest.raises(DatabaseError):
        engine.search("coffee")
    metrics = collect(engine).to_dict()
    assert metrics["errors"]["search"] == 1
    assert metrics["error_rate"]["search"] == 1.0
    with pytest.raises(NotFoundError):  # a rejected edit, not a failure
        engine.update(12345, Draft(content="nobody"))
    assert collect(engine).to_dict()["invalid"]["update"] == 1


def test_cache_hit_rate_rises_with_repeated_queries(engine: Engine) -> None:
    seed(engine, 4)
    engine.search("river walk")
    first = collect(engine).to_dict()["embedding_cache"]
    for _ in range(5):
        engine.search("river walk")
    second = collect(engine).to_dict()["embedding_cache"]
    assert second["hits"] == first["hits"] + 5
    assert second["misses"] == first["misses"]
    assert second["hit_rate"] > (first["hit_rate"] or 0)


def test_pool_memory_and_outbox_figures(engine: Engine) -> None:
    seed(engine, 2)
    report = collect(engine)
    metrics = report.to_dict()
    assert metrics["process"]["rss_bytes"] > 10_000_000
    assert metrics["pool"]["size"] >= 1
    assert metrics["pool"]["checked_out"] == 0
    with engine.store.engine.connect():
        pool = collect(engine).to_dict()["pool"]
    assert pool["checked_out"] == 1 and pool["open"] >= 1 and pool["overflow"] == 0
    assert metrics["outbox"] == {"size": 0, "lag_s": None, "max_attempts": 0, "last_error": None}
    text = "\n".join(format_metrics(report))
    assert "search" not in text or "latency" in text
    assert "embedding cache" in text and "sql pool" in text


def test_index_recall_is_measured_and_persisted(engine: Engine) -> None:
    seed(engine, 30)
    quality = measure_index_quality(engine, sample=10, seed=1)
    assert quality is not None
    assert quality.sample == 10
    assert quality.recall == 1.0  # an unoptimised shard answers exactly
    metrics = collect(engine).to_dict()
    assert metrics["index"]["recall_at_10"] == 1.0
    assert metrics["index"]["sample"] == 10
    assert maybe_measure_index_quality(engine, every_seconds=3600) is None  # measured just now
    assert maybe_measure_index_quality(engine, every_seconds=0) is not None


def test_prometheus_text_parses(engine: Engine) -> None:
    seed(engine, 5)
    engine.search("coffee")
    engine.search("garden tag:coffee")
    measure_index_quality(engine, sample=5)
    families = {f.name: f for f in text_string_to_metric_families(prometheus_text(engine))}
    stage = families["ephemera_search_stage_seconds"]
    assert stage.type == "histogram"
    counts = {s.labels["stage"]: s.value for s in stage.samples if s.name.endswith("_count")}
    assert counts["total"] == 2 and counts["vector"] == 2
    buckets = [
        s for s in stage.samples if s.name.endswith("_bucket") and s.labels["stage"] == "total"
    ]
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 2
    recent = families["ephemera_search_stage_recent_seconds"]
    assert {s.labels["quantile"] for s in recent.samples} == {"0.5", "0.95", "0.99"}
    assert families["ephemera_write_seconds"].type == "histogram"
    assert families["ephemera_index_recall_at_10"].samples[0].value == 1.0
    assert families["ephemera_outbox_size"].samples[0].value == 0
    assert families["ephemera_embedding_cache"].type == "counter"
    assert {s.labels["state"] for s in families["ephemera_sql_pool_connections"].samples} >= {
        "size",
        "checked_out",
        "overflow",
    }
    assert families["ephemera_process_resident_bytes"].samples[0].value > 0


def test_metrics_endpoint_serves_on_localhost(engine: Engine) -> None:
    engine.search("anything")
    server = serve_metrics(engine, 0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
    names = {f.name for f in text_string_to_metric_families(body)}
    assert "ephemera_search_stage_seconds" in names


def test_in_memory_recorder(tmp_path: Path) -> None:
    recorder = MetricsRecorder(None)
    recorder.observe("write.add", 2.0)
    recorder.count("errors.add")
    data = recorder.read()
    assert data.latency["write.add"].total_count == 1
    assert data.counter("errors.add") == 1
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------- processes


def test_search_in_one_process_shows_in_stats_of_another(cli_env: dict[str, str]) -> None:
    # Written here (in-process commands), read by a real second process.
    assert invoke_ephemera("add", "Coffee with Ana by the river", env=cli_env).returncode == 0
    for query in ("coffee", "river", "coffee"):
        found = invoke_ephemera("search", query, env=cli_env)
        assert found.returncode == 0, found.stderr
    stats = run_ephemera("stats", "--json", env=cli_env)
    assert stats.returncode == 0, stats.stderr
    metrics = json.loads(stats.stdout)["metrics"]
    assert metrics["latency_ms"]["search.total"]["count"] == 3
    assert metrics["latency_ms"]["write.add"]["count"] == 1
    assert len(metrics["series_ms"]["search.total"]) == 3
    assert metrics["embedding_cache"]["misses"] >= 1
    text = invoke_ephemera("stats", env=cli_env)
    assert "search.total" in text.stdout and "embedding cache" in text.stdout
    prom = invoke_ephemera("stats", "--prometheus", env=cli_env)
    assert prom.returncode == 0, prom.stderr
    families = {f.name: f for f in text_string_to_metric_families(prom.stdout)}
    total = [
        s
        for s in families["ephemera_search_stage_seconds"].samples
        if s.name.endswith("_count") and s.labels["stage"] == "total"
    ]
    assert total[0].value == 3


def test_metrics_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPHEMERA_METRICS", "0")
    settings = Settings(data_dir=tmp_path / "d", embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        engine.add(Draft(content="quiet"))
        engine.search("quiet")
    assert not (tmp_path / "d" / "metrics.db").exists()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_samples_recall_and_serves_metrics(cli_env: dict[str, str]) -> None:
    for text in ("Coffee by the river", "Garden plans", "Lisbon trip", "Sketching"):
        assert invoke_ephemera("add", text, env=cli_env).returncode == 0
    once = invoke_ephemera("worker", "--once", "--no-backup", env=cli_env)
    assert once.returncode == 0, once.stderr
    metrics = json.loads(invoke_ephemera("stats", "--json", env=cli_env).stdout)["metrics"]
    assert metrics["index"]["recall_at_10"] == 1.0  # sampled by the worker's run
    port = free_port()
    worker = subprocess.Popen(
        [*EPHEMERA, "worker", "--interval", "0.5", "--no-backup", "--metrics-port", str(port)],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = None
        deadline = time.time() + 60
        while time.time() < deadline and body is None:
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    body = resp.read().decode()
            except OSError:
                assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
                time.sleep(0.2)
        assert body is not None
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert families["ephemera_index_recall_at_10"].samples[0].value == 1.0
        assert families["ephemera_memories"].samples[0].value == 4
    finally:
        worker.terminate()
        worker.wait(timeout=30)
