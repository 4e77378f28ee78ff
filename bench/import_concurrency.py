"""Import throughput on MariaDB with 1, 2 and 4 importers at once, and what a memory costs
on disk there.

Each importer is a process of its own with its own engine (as separate hosts would be)
importing its share of ``--total`` memories (LoCoMo turns, made distinct per importer) with
``Engine.import_drafts`` in batches of 256. The SQL side is what is measured: memories, tags,
outbox rows and the change feed, through the store's duplicate checks, id allocation and
deadlock retries. The importers hold no vector store (``qdrant_url`` points at a closed port),
so the vectors wait in the outbox for the workers, as when imports run on other hosts than
the workers; the embedding rate is measured in bench/embedding_service.py.

After each run the server's own figures (information_schema: data and index bytes per
table) give bytes per memory in MariaDB; the FULLTEXT index's own tables are not among them
(bench/replicas.py measures them on a server of its own). The server's deadlock and
lock-wait counters are read around each run (other clients of the server count too).

    nice -n 10 /work/venv/bin/python bench/import_concurrency.py [--total 20000]
        [--database-url mysql+pymysql://root@127.0.0.1:3306]
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import base_parser, scratch_database, table, table_sizes
from _datasets import load_locomo

from ephemera_tui.engine import Draft, Engine, Settings

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def importer(job: tuple[str, str, int, int, Any, Any]) -> tuple[int, float]:
    """One importer process: open an engine, wait for the others, import; (count, seconds)."""
    import warnings

    warnings.simplefilter("ignore", UserWarning)  # qdrant-client: no server to ask its version
    url, data, who, count, ready, go = job
    with tempfile.TemporaryDirectory(prefix=f"ephemera-importer-{who}-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            qdrant_url="http://127.0.0.1:9",  # nothing listens: vectors stay in the outbox
            embedding_model="fake-hash-384",
        )
        docs = [d for _, d in load_locomo(Path(data)).docs]
        drafts = [
            Draft(
                f"{docs[i % len(docs)].content} [importer {who}, row {i}]",
                created_at=1_700_000_000 + who * 10_000_000 + i,
                source="import",
                tags=docs[i % len(docs)].tags,
            )
            for i in range(count)
        ]
        with Engine(settings) as engine:
            engine.count()
            ready.release()
            go.wait()
            started = time.perf_counter()
            report = engine.import_drafts(((d, None) for d in drafts), batch_size=256)
            return report.imported, time.perf_counter() - started


def lock_counters(url: str) -> dict[str, int]:
    """The server's deadlock and row-lock-wait counters (global, so read around each run)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SHOW GLOBAL STATUS WHERE Variable_name IN "
                    "('Innodb_deadlocks', 'Innodb_row_lock_waits')"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(r[0]).lower(): int(r[1]) for r in rows}


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--importers", default="1,2,4")
    args = parser.parse_args()
    server = args.database_url or DEFAULT_SERVER
    context = multiprocessing.get_context("spawn")
    rows: list[list[object]] = []
    out: dict[str, Any] = {}
    print(f"{args.total} memories per run on {server}; load before {load()}", flush=True)
    for count in (int(n) for n in args.importers.split(",")):
        with scratch_database(server) as url:
            assert url is not None
            with Engine(
                Settings(
                    data_dir=Path(tempfile.mkdtemp(prefix="ephemera-schema-")),
                    database_url=url,
                    embedding_model="fake-hash-384",
                )
            ):
                pass  # the schema, made once before the importers start
            share = args.total // count
            locks_before = lock_counters(url)
            with context.Manager() as manager, context.Pool(count) as pool:
                ready, go = manager.Semaphore(0), manager.Event()
                pending = pool.map_async(
                    importer,
                    [(url, str(args.data), n, share, ready, go) for n in range(count)],
                )
                for _ in range(count):
                    ready.acquire()
                started = time.perf_counter()
                go.set()
                results = pending.get()
                wall = time.perf_counter() - started
            imported = sum(n for n, _ in results)
            locks_after = lock_counters(url)
            locks = {k: locks_after.get(k, 0) - v for k, v in locks_before.items()}
            bytes_by_table = table_sizes(url)
            total_bytes = sum(bytes_by_table.values())
            rate = imported / wall
            rows.append(
                [
                    count,
                    imported,
                    f"{wall:.1f}",
                    f"{rate:.0f}",
                    f"{total_bytes / imported:.0f}",
                    locks.get("innodb_deadlocks", 0),
                    locks.get("innodb_row_lock_waits", 0),
                    load(),
                ]
            )
            out[str(count)] = {
                "imported": imported,
                "seconds": wall,
                "per_second": rate,
                "bytes_per_memory": total_bytes / imported,
                "tables": bytes_by_table,
                "locks": locks,
                "load": load(),
            }
            print(
                f"{count} importer(s): {imported} in {wall:.1f} s ({rate:.0f}/s); "
                f"{bytes_by_table}; load {load()}",
                flush=True,
            )
    print(
        table(
            [
                "importers",
                "memories",
                "seconds",
                "memories/s",
                "bytes/memory",
                "deadlocks",
                "lock waits",
                "load",
            ],
            rows,
        )
    )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
