"""Three real ``ephemera worker`` processes sharing one MariaDB database and one vector store
(the Qdrant stand-in, tests/scaling/qdrant_standin.py) split a backlog and a cross-check pass;
one is killed with SIGKILL while it holds an outbox slice, and its slice is taken over when
its lease runs out. Every memory ends up with its vector, only the killed worker's unfinished
batch is written twice, and every range of the pass is checked once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.store import Lease, MetaKey
from ephemera_tui.engine.sync.worker import CURSOR_KEY, LAST_FULL_KEY, SLICE_BATCH
from tests.helpers import EPHEMERA
from tests.scaling.qdrant_standin import Running
from tests.scaling.servers import free_port

MEMORIES = 3000
SLICES = 6
CHECK_RANGE = 200


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _runs(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_three_worker_processes_share_the_work_and_take_over(
    tmp_path: Path, mysql_url: str
) -> None:
    standin = Running(free_port(), upsert_delay=0.3)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(
            data_dir=tmp_path / "setup",
            database_url=mysql_url,
            qdrant_url=standin.url,
            embedding_model="fake-hash-384",
        )
        with Engine(settings) as engine:
            assert engine.vectors() is not None  # creates the collection
            for start in range(0, MEMORIES, 500):
                engine.store.insert([Draft(f"note {i}") for i in range(start, start + 500)])
            ids = {m.id for m in engine.iter_all()}
        (tmp_path / "none.toml").write_text("")
        logs = []
        for n in range(3):
            env = dict(os.environ)
            env.update(
                EPHEMERA_DATA_DIR=str(tmp_path / f"host{n}"),
                EPHEMERA_DATABASE_URL=mysql_url,
                EPHEMERA_QDRANT_URL=standin.url,
                EPHEMERA_EMBEDDING_MODEL="fake-hash-384",
                EPHEMERA_CONFIG=str(tmp_path / "none.toml"),
                EPHEMERA_SERVICE="off",
                EPHEMERA_WORKER_SLICES=str(SLICES),
                EPHEMERA_WORKER_LEASE_S="3",
                EPHEMERA_METRICS="0",
                PYTHONUNBUFFERED="1",
            )
            log = tmp_path / f"worker{n}.jsonl"
            logs.append(log)
            workers.append(
                subprocess.Popen(
                    [
                        *EPHEMERA,
                        "worker",
                        "--json",
                        "--interval",
                        "0.3",
                        "--no-backup",
                        "--slice",
                        str(CHECK_RANGE),
                        "--recall-every",
                        "0",
                    ],
                    env=env,
                    stdout=log.open("wb"),
                    stderr=(tmp_path / f"worker{n}.err").open("wb"),
                )
            )
        pids = {w.pid: n for n, w in enumerate(workers)}
        with Engine(settings) as watcher:
            store = watcher.store
            victim: dict[str, Any] = {}

            def a_worker_holds_a_slice() -> bool:
                now_ms = time.time() * 1000
                for key, value in store.meta_with_prefix(MetaKey.OUTBOX_SLICE_LEASE).items():
                    held = Lease.parse(value)
                    if held is None or held[1] <= now_ms:
                        continue
                    pid = int(held[0].split(":")[1])
                    if pid in pids and store.pending_count():
                        victim.update(key=key, owner=held[0], pid=pid)
                        return True
                return False

            _wait(a_worker_holds_a_slice, 120, "a worker to hold an outbox slice")
            os.kill(victim["pid"], signal.SIGKILL)
            killed = pids[victim["pid"]]
            workers[killed].wait(10)
            claims_at_kill = {
                k
                for k, v in store.meta_with_prefix(MetaKey.CHECK_CLAIM).items()
                if v.startswith(victim["owner"] + "|")
            }

            def all_done() -> bool:
                return (
                    store.pending_count() == 0
                    and store.get_meta(CURSOR_KEY) == "-1"
                    and store.get_meta(LAST_FULL_KEY) is not None
                )

            _wait(all_done, 240, "the outbox to drain and the cross-check pass to finish")
            taker = Lease.parse(store.get_meta(victim["key"]))
            assert taker is not None and taker[0] != victim["owner"]
            assert not store.meta_with_prefix(MetaKey.CHECK_CLAIM)
        for n, w in enumerate(workers):
            if n != killed:
                w.send_signal(signal.SIGTERM)
        for n, w in enumerate(workers):
            if n != killed:
                assert w.wait(30) == 0, (tmp_path / f"worker{n}.err").read_text()[-2000:]

        runs = [_runs(log) for log in logs]
        synced = [sum(r["synced"] for r in rs) for rs in runs]
        checked = [sum(r["checked"] for r in rs) for rs in runs]
        assert all(not r["errors"] for rs in runs for r in rs), runs
        assert sum(1 for s in synced if s) >= 2, synced  # the backlog was shared
        assert sum(r["found"] for rs in runs for r in rs) == 0
        # Each range of the pass once (a range the victim held when it died, twice at most).
        assert MEMORIES <= sum(checked) <= MEMORIES + CHECK_RANGE * len(claims_at_kill)

        stats = standin.stats()
        upserts = {int(k): v for k, v in stats["upserts"].items()}
        assert set(upserts) == ids
        twice = {i for i, count in upserts.items() if count > 1}
        slice_of_victim = int(victim["key"].rsplit(":", 1)[1])
        assert len(twice) <= SLICE_BATCH
        assert all(i % SLICES == slice_of_victim for i in twice)
        assert set(stats["orderings"]) == {"weak"}
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(10)
        standin.stop()
