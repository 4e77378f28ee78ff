"""Search and capture while the HNSW index is built in the background, at 100k memories.

Builds the ``latency.py`` corpus (real LoCoMo embeddings, perturbed), reopens it with the real
model as the app would, and runs the upkeep ``Worker`` on a thread (as the app does, one pass
a second) with ``index_threshold`` reached, so a builder process indexes a copy of the store.
Meanwhile the main thread keeps searching (hybrid with filters, LoCoMo questions embedded at
search time) and adds a memory every 20 searches. Prints search latency before, during and
after the build, the longest single search (the hand-over to the new shard included), how long
the export and the hand-over held the store, and the build time.

    /work/venv/bin/python bench/background_index.py [--size 100000]
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from _common import (
    base_parser,
    percentile,
    settings_overrides,
    table,
    temp_dir,
)
from latency import app_engine_on_corpus, corpus_inputs, filtered

from ephemera_tui.engine import Draft
from ephemera_tui.engine.sync.worker import Worker
from ephemera_tui.engine.vectors import EdgeVectors


def searches(engine, questions: list[str], start: int, count: int) -> list[float]:
    out = []
    for n in range(start, start + count):
        mark = time.perf_counter()
        engine.search(filtered(questions[n % len(questions)], n), limit=20)
        out.append((time.perf_counter() - mark) * 1000)
    return out


def row(name: str, values: list[float]) -> list[object]:
    return [name, len(values), percentile(values, 50), percentile(values, 95), max(values)]


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="give up when the build takes longer (s)"
    )
    args = parser.parse_args()
    inputs = corpus_inputs(args.data, args.no_cache)
    questions = inputs[1]
    with temp_dir("background-index") as tmp:
        engine = app_engine_on_corpus(Path(tmp), settings_overrides(args.set), args.size, inputs)
        for n in range(10):
            engine.search(questions[n])
        before = searches(engine, questions, 0, 200)

        # The build starts once this many vectors are unindexed: the whole corpus at most.
        worker = Worker(engine, interval=1.0, index_threshold=min(20_000, args.size))
        runs: list[tuple[float, str | None, list[str]]] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                mark = time.perf_counter()
                run = worker.run_once()
                runs.append(((time.perf_counter() - mark) * 1000, run.index, run.errors))
                if run.index and run.index.startswith("HNSW index built"):
                    return
                if any("index build failed" in error for error in run.errors):
                    return
                stop.wait(1.0)

        started = time.perf_counter()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        during: list[float] = []
        adds: list[float] = []
        n = 200
        while thread.is_alive():
            if time.perf_counter() - started > args.timeout:
                stop.set()
                thread.join()
                raise SystemExit(f"the build did not finish within {args.timeout:.0f}s")
            during.extend(searches(engine, questions, n, 20))
            n += 20
            mark = time.perf_counter()
            engine.add(Draft(f"captured during the index build, number {n}", tags=("bench",)))
            adds.append((time.perf_counter() - mark) * 1000)
        total_s = time.perf_counter() - started
        after = searches(engine, questions, n, 200)
        vectors = engine.vectors()
        assert isinstance(vectors, EdgeVectors)
        info = vectors.index_info()
        check = engine.check()
        last = json.loads(engine.store.get_meta("index_build_last") or "{}")
        engine.close()
    errors = [e for _, _, errs in runs for e in errs]
    if not any(index and index.startswith("HNSW index built") for _, index, _ in runs):
        raise SystemExit(f"the build did not finish: {errors}")
    start_ms = next(ms for ms, index, _ in runs if index and index.startswith("building"))
    swap_ms = next(ms for ms, index, _ in runs if index and index.startswith("HNSW index built"))
    print(
        table(
            ["searches (hybrid + filter)", "n", "p50 ms", "p95 ms", "max ms"],
            [
                row("before (exact scan)", before),
                row("during the build", during),
                row("after (HNSW)", after),
                row("adds during the build", adds),
            ],
        )
    )
    print(
        f"\n{args.size} memories: build started to finished {total_s:.0f}s (builder process "
        f"{last.get('build_seconds')}s); worker pass that exported the store {start_ms:.0f} ms, "
        f"pass that handed over {swap_ms:.0f} ms (opening the new shard {last.get('open_ms')} ms, "
        f"replaying {last.get('replayed')} writes {last.get('replay_ms')} ms); "
        f"indexed {info['indexed']} of {info['points']}; check problems {check.problems}; "
        f"errors {errors or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
