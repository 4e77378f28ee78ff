"""The large-corpus run: build N memories (default 1,000,000) in the embedded default and report
build time, RSS, disk use, reopen time and search latency (hybrid, filtered, keyword-only).

The corpus is built as in ``bench/latency.py`` (real LoCoMo turns recombined, their real
embeddings perturbed, inserted through the engine's store and vector store; queries embedded
by the real model at search time). ``--keep DIR`` builds into DIR and leaves it there, and a
later run with the same ``--keep DIR`` skips the build and only measures.

    /work/venv/bin/python bench/scale_1m.py [--count 1000000] [--keep /tmp/ephemera-1m]
        [--database-url mysql+pymysql://root@127.0.0.1:3306]

With ``--database-url`` the SQL side lives in a scratch database on that server (dropped
afterwards); the vectors stay in the data dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    base_parser,
    make_engine,
    scratch_database,
    settings_overrides,
    table,
    table_sizes,
)
from latency import (
    build_corpus,
    corpus_inputs,
    dir_mb,
    engine_in_format,
    rss_mb,
    run_scenario,
    turn_sentences,
)

from ephemera_tui.engine import Settings
from ephemera_tui.engine.embedder import CachedEmbedder
from ephemera_tui.engine.vectors.base import FORMATS, HEAD_ROWS


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="memories to build")
    parser.add_argument("--queries", type=int, default=100, help="queries per scenario")
    parser.add_argument("--keep", type=Path, default=None, help="build into (or reuse) this dir")
    parser.add_argument(
        "--one-row", action="store_true", help="one row per memory (no sentence rows)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=HEAD_ROWS, help="vector store format to build"
    )
    args = parser.parse_args()
    overrides = settings_overrides(args.set)
    precision = Settings(**overrides).query_precision
    turns, questions, turn_vectors, doc_embedder, model = corpus_inputs(
        args.data, args.no_cache, precision
    )
    data = args.keep or Path(tempfile.mkdtemp(prefix="ephemera-bench-1m-"))
    facts: dict[str, object] = {"memories": args.count}
    with scratch_database(args.database_url) as url:
        if url:
            overrides["database_url"] = url
            facts["backend"] = "mysql"
        run(args, data, overrides, facts, turns, questions, turn_vectors, doc_embedder, model)
    return 0


def run(
    args: Any,
    data: Path,
    overrides: dict[str, Any],
    facts: dict[str, object],
    *inputs: Any,
) -> None:
    """Build (unless kept), reopen, search and report; ``inputs`` as ``corpus_inputs`` gives."""
    turns, questions, turn_vectors, doc_embedder, model = inputs
    rows: list[list[Any]] = []
    env = dict(os.environ)
    if "database_url" in overrides:
        env["EPHEMERA_DATABASE_URL"] = overrides["database_url"]
    try:
        if "database_url" in overrides or not (data / "ephemera.db").exists():
            engine = engine_in_format(data, overrides, doc_embedder, args.format)
            turn_rows = None if args.one_row else turn_sentences(turns, args.no_cache)
            build_s = build_corpus(engine, turns, turn_vectors, args.count, turn_rows=turn_rows)
            facts["build_s"] = round(build_s, 1)
            facts["build_rate_per_s"] = round(args.count / build_s)
            facts["rss_after_build_mb"] = round(rss_mb())
            engine.close()
        facts["disk_mb"] = round(dir_mb(data))
        if "database_url" in overrides:
            facts["mysql_mb"] = round(sum(table_sizes(overrides["database_url"]).values()) / 1e6)
        mark = time.perf_counter()
        engine = make_engine(data, overrides, CachedEmbedder(model, max_entries=0))
        engine.vectors()
        facts["reopen_s"] = round(time.perf_counter() - mark, 2)
        engine.prepare_interactive()  # the query session, as the app does
        facts["count"] = engine.count()
        try:
            for n in range(5):
                engine.search(questions[n])
            for s_index, (name, semantic, with_filter) in enumerate(
                [("hybrid", True, False), ("hybrid+filter", True, True), ("keyword", False, False)]
            ):
                qs = [questions[(i + s_index * 97) % len(questions)] for i in range(args.queries)]
                stats = run_scenario(engine, qs, semantic, with_filter)
                rows.append(
                    [
                        name,
                        stats["p50"],
                        stats["p95"],
                        stats.get("vector_p50", 0.0),
                        stats.get("keyword_p50", 0.0),
                        round(os.getloadavg()[0], 2),
                    ]
                )
            facts["rss_after_search_mb"] = round(rss_mb())
        finally:
            engine.close()
        # What a user sees: a fresh process answering `ephemera stats` on this data dir.
        mark = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ephemera_tui.cli", "--data-dir", str(data), "stats", "--json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
        )
        facts["cli_stats_s"] = round(time.perf_counter() - mark, 2)
        if done.returncode != 0:
            facts["cli_stats_error"] = done.stderr.strip()[-300:]
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)
    print(" ".join(f"{k}={v}" for k, v in facts.items()))
    print(table(["scenario", "p50 ms", "p95 ms", "vector p50", "keyword p50", "load1"], rows))
    if args.json:
        print(json.dumps(facts))


if __name__ == "__main__":
    raise SystemExit(main())
