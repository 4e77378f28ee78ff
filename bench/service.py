"""The resident engine, measured: CLI calls with and without a running service, search
through the service against in-process on the same corpus, and what an idle app writes.

1. ``cli``: wall time and peak RSS of ``ephemera add`` and ``ephemera search`` as a user runs
   them (a new process each), in-process and against ``ephemera serve`` on the same data dir.
2. ``latency``: ``Engine.search`` in-process against ``ServiceClient.search`` over the socket
   to a service holding the same corpus (the ``latency.py`` corpus, real model at query time).
3. ``idle``: the real app (Textual, headless) open on a journal for ``--idle-seconds`` with
   nobody typing: SQL writes (INSERT/UPDATE/DELETE seen by the pool), ``metrics.db`` growth,
   and the process's CPU time.

    /work/venv/bin/python bench/service.py [--size 100000] [--runs 7] [--idle-seconds 60]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import base_parser, percentile, table, temp_dir
from latency import app_engine_on_corpus, corpus_inputs

from ephemera_tui.service.client import find_service

EPHEMERA = [sys.executable, "-m", "ephemera_tui.cli"]


def child_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS of one command, read by GNU time (exact per process)."""
    mark = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - mark
    if done.returncode != 0:
        raise SystemExit(f"{command}: {done.stderr}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def cli_rows(data: Path, runs: int) -> list[list[object]]:
    env = {**os.environ, "EPHEMERA_DATA_DIR": str(data), "EPHEMERA_CONFIG": str(data / "none")}
    rows: list[list[object]] = []
    for label in ("in-process", "with service"):
        service = None
        if label == "with service":
            service = subprocess.Popen([*EPHEMERA, "serve"], env=env, stderr=subprocess.DEVNULL)
            while find_service(data) is None:
                time.sleep(0.2)
        try:
            for name, args in (
                ("add", ["add", "a note from the benchmark"]),
                ("search", ["search", "what did we plan for the trip"]),
            ):
                walls, peaks = [], []
                for _ in range(runs):
                    wall, peak = child_rss_mb([*EPHEMERA, *args], env)
                    walls.append(wall)
                    peaks.append(peak)
                rows.append(
                    [
                        f"{name} {label}",
                        f"{statistics.median(walls):.3f}",
                        f"{min(walls):.3f}",
                        f"{statistics.median(peaks):.0f}",
                    ]
                )
        finally:
            if service is not None:
                service.terminate()
                service.wait(30)
    return rows


def latency_rows(
    data: Path, size: int, queries: int, source: Path, no_cache: bool
) -> list[list[object]]:
    from ephemera_tui.service.runner import Service

    inputs = corpus_inputs(source, no_cache)
    engine = app_engine_on_corpus(data, {}, size, inputs)
    questions = inputs[1][:queries]
    service = Service(engine)
    service.start_in_thread()
    client = find_service(data)
    assert client is not None
    rows: list[list[object]] = []
    try:
        for label, journal in (("in-process", engine), ("through the service", client)):
            totals = []
            for n, question in enumerate(questions):
                mark = time.perf_counter()
                journal.search(f"{question} #{n}-{label}", limit=20)  # distinct: no cache hits
                totals.append((time.perf_counter() - mark) * 1000)
            rows.append([label, f"{percentile(totals, 50):.1f}", f"{percentile(totals, 95):.1f}"])
    finally:
        client.close()
        service.stop()
        engine.close()
    return rows


async def idle_app(data: Path, seconds: float) -> dict[str, float]:
    from sqlalchemy import event

    from ephemera_tui.app import EphemeraApp
    from ephemera_tui.engine import Settings

    settings = Settings(data_dir=data, backup_every_hours=0)
    app = EphemeraApp(settings)
    writes: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(600):
            if app.engine is not None and app.memory_count is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause(5)  # let the first upkeep pass drain and cross-check
        assert app.engine is not None

        def seen(_c: object, _cur: object, statement: str, *_a: object) -> None:
            if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
                writes.append(statement)

        event.listen(app.engine.store.engine, "before_cursor_execute", seen)
        metrics = data / "metrics.db-wal"
        metrics_before = metrics.stat().st_size if metrics.exists() else 0
        cpu_before = time.process_time()
        await pilot.pause(seconds)
        cpu = time.process_time() - cpu_before
        metrics_after = metrics.stat().st_size if metrics.exists() else 0
        event.remove(app.engine.store.engine, "before_cursor_execute", seen)
    return {
        "seconds": seconds,
        "sql_writes": len(writes),
        "sql_writes_per_min": len(writes) * 60 / seconds,
        "metrics_wal_growth_bytes": metrics_after - metrics_before,
        "cpu_percent_of_a_core": round(100 * cpu / seconds, 2),
    }


def main() -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--size", type=int, default=100_000, help="corpus for the latency part")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7, help="runs of each CLI command")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--skip", default="", help="comma list of parts to skip: cli,latency,idle")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"load average before: {os.getloadavg()}")
    if "cli" not in skip:
        with temp_dir("ephemera-bench-svc-") as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            (data / "none").write_text("")
            env = {
                **os.environ,
                "EPHEMERA_DATA_DIR": str(data),
                "EPHEMERA_CONFIG": str(data / "none"),
            }
            for n in range(3):
                subprocess.run(
                    [*EPHEMERA, "add", f"memory {n}: a walk, a call, a trip"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            print(
                table(["command", "median s", "best s", "peak RSS MB"], cli_rows(data, args.runs))
            )
        print(f"load average: {os.getloadavg()}")
    if "latency" not in skip:
        with temp_dir("ephemera-bench-svc-") as tmp:
            rows = latency_rows(
                Path(tmp) / "data", args.size, args.queries, args.data, args.no_cache
            )
            print(f"hybrid search at {args.size} memories, {args.queries} queries")
            print(table(["path", "p50 ms", "p95 ms"], rows))
        print(f"load average: {os.getloadavg()}")
    if "idle" not in skip:
        with temp_dir("ephemera-bench-svc-") as tmp:
            data = Path(tmp) / "data"
            (Path(tmp) / "none").write_text("")
            env = {**os.environ, "EPHEMERA_DATA_DIR": str(data), "EPHEMERA_CONFIG": f"{tmp}/none"}
            for n in range(3):
                subprocess.run(
                    [*EPHEMERA, "add", f"idle memory {n}"], env=env, check=True, capture_output=True
                )
            print(json.dumps(asyncio.run(idle_app(data, args.idle_seconds))))
        print(f"load average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
