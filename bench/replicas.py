"""Search latency reading from a MariaDB read replica against reading from the primary.

Starts a binlog-enabled MariaDB primary and a replica of its own (tests/scaling/servers.py,
scratch data dirs, free ports), imports ``--size`` memories (LoCoMo turns, repeated with a
suffix; the deterministic fake embedder, so the vector side costs little and the SQL side
shows), then runs the same reads with the engine's replicas attached and detached, query by
query in turn so a neighbour's load falls on both:

- keyword search (``keyword_only``: FULLTEXT + enrichment, all SQL);
- hybrid search (vector side on the embedded store, keyword side and filters in SQL);
- a timeline page (browse, 50 at a random offset) and the day histogram (activity).

It also reports bytes per memory on disk, as the growth between a third of ``--size`` and
all of it (files start preallocated): the database's InnoDB files (FULLTEXT included) and
the embedded vector store.

Both servers share this machine's cores, so this measures what routing costs, not the load
a replica takes off a primary on another host.

    nice -n 10 /work/venv/bin/python bench/replicas.py [--size 20000] [--queries 200]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import base_parser, percentile, table, temp_dir
from _datasets import load_locomo

from ephemera_tui.engine import Draft, Engine, Settings
from tests.scaling.servers import missing_tools, start_pair


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def corpus(data: Path, size: int) -> list[Draft]:
    docs = [draft for _, draft in load_locomo(data).docs]
    out: list[Draft] = []
    copy = 0
    while len(out) < size:
        for draft in docs:
            if len(out) >= size:
                break
            content = draft.content if copy == 0 else f"{draft.content} (copy {copy})"
            created = (draft.created_at or 1_700_000_000) + copy * 86_400 * 400
            out.append(Draft(content, created_at=created, source=draft.source, tags=draft.tags))
        copy += 1
    return out


def footprint(pair: Any, database: str, data_dir: Path) -> dict[str, int]:
    """Bytes on disk: the database's InnoDB files on the primary (the FULLTEXT index's own
    tables included, its cache flushed into them first) and the embedded vector store."""
    pair.primary.sql(
        "SET GLOBAL innodb_optimize_fulltext_only = ON",
        f"OPTIMIZE TABLE {database}.memory_fragments",
        "SET GLOBAL innodb_optimize_fulltext_only = OFF",
        f"ANALYZE TABLE {database}.memory_fragments, {database}.memory_tags",
    )
    files = {
        str(name): int(size or 0)
        for name, size in pair.primary.sql(
            "SELECT NAME, ALLOCATED_SIZE FROM information_schema.INNODB_SYS_TABLESPACES "
            f"WHERE NAME LIKE '{database}/%'"
        )
    }
    fulltext = sum(v for k, v in files.items() if "/fts_" in k.lower())
    vectors = sum(p.stat().st_size for p in (data_dir / "vectors").rglob("*") if p.is_file())
    return {
        "mariadb (all files)": sum(files.values()),
        "of which FULLTEXT": fulltext,
        "memory_fragments": sum(v for k, v in files.items() if k.endswith("/memory_fragments")),
        "qdrant-edge shard": vectors,
    }


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        raise SystemExit(f"cannot start a MariaDB pair: {reason}")
    dataset = load_locomo(args.data)
    questions = [q.raw.split(" ", 1)[1] for q in dataset.queries]
    random.Random(3).shuffle(questions)
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]
    print(f"load before {load()}", flush=True)
    pair = start_pair()
    try:
        pair.create_database("bench")
        with temp_dir("replicas") as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                database_url=pair.primary.url("bench"),
                embedding_model="fake-hash-384",
            )
            with Engine(settings) as engine:
                drafts = corpus(args.data, args.size)
                first = len(drafts) // 3
                started = time.perf_counter()
                engine.import_drafts(((d, None) for d in drafts[:first]), 1000)
                engine.release_vectors()  # flushed and closed: its files as they stay
                disk_first = footprint(pair, "bench", Path(tmp))
                engine.import_drafts(((d, None) for d in drafts[first:]), 1000)
                print(
                    f"imported {engine.count()} memories in "
                    f"{time.perf_counter() - started:.1f} s; load {load()}",
                    flush=True,
                )
                engine.release_vectors()
                disk_last = footprint(pair, "bench", Path(tmp))
                pair.wait_caught_up(120)
                engine.store.use_replicas([pair.replica.url("bench")])
                replicas = engine.store.replicas
                assert replicas is not None
                total = engine.count()

                def run(read: Callable[[int], object]) -> dict[str, list[float]]:
                    times: dict[str, list[float]] = {"primary": [], "replica": []}
                    for n in range(args.queries):
                        for where in ("primary", "replica") if n % 2 else ("replica", "primary"):
                            engine.store.replicas = replicas if where == "replica" else None
                            engine.searcher.forget()  # no answer from the one-second memo
                            mark = time.perf_counter()
                            read(n)
                            times[where].append((time.perf_counter() - mark) * 1000)
                    engine.store.replicas = replicas
                    return times

                rng = random.Random(5)
                offsets = [rng.randrange(max(1, total - 50)) for _ in range(args.queries)]
                scenarios: dict[str, Callable[[int], object]] = {
                    "keyword search": lambda n: engine.search(questions[n], 10, keyword_only=True),
                    "hybrid search": lambda n: engine.search(questions[n], 10),
                    "timeline page (browse 50)": lambda n: engine.browse(
                        limit=50, offset=offsets[n]
                    ),
                    "day histogram (activity)": lambda n: engine.activity("day"),
                }
                for read in scenarios.values():
                    read(0)  # warm both servers' caches
                rows: list[list[object]] = []
                figures: dict[str, dict[str, float]] = {}
                for name, read in scenarios.items():
                    times = run(read)
                    for where, values in times.items():
                        figures[f"{name}, {where}"] = {
                            "p50": statistics.median(values),
                            "p95": percentile(values, 95),
                        }
                        rows.append(
                            [
                                name,
                                where,
                                f"{statistics.median(values):.2f}",
                                f"{percentile(values, 95):.2f}",
                            ]
                        )
                    print(f"{name}: done; load {load()}", flush=True)
                added = total - first
                disk = {k: (disk_last[k] - disk_first[k]) / added for k in disk_last}
                state = replicas.states()[0]
                print(table(["reads", "from", "p50 ms", "p95 ms"], rows))
                print(
                    f"{total} memories; replica status {state.status}, lag {state.lag_s} s, "
                    f"reads served {state.reads}, skipped {state.skipped}; load after {load()}"
                )
                print(
                    f"bytes per memory added ({first} -> {total} memories): "
                    + ", ".join(f"{k} {v:.0f}" for k, v in disk.items())
                    + f"; at {total}: "
                    + ", ".join(f"{k} {v / total:.0f}" for k, v in disk_last.items())
                )
                if args.json:
                    print(
                        json.dumps(
                            {
                                "size": total,
                                "figures": figures,
                                "bytes_per_memory": disk,
                                "load": load(),
                            }
                        )
                    )
    finally:
        pair.stop()


if __name__ == "__main__":
    main()
