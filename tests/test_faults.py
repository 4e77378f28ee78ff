"""Injected faults, on SQLite and on the real MariaDB: kill -9 mid-import and mid-sync, the vector
store unavailable, the database unreachable or dropping the connection mid-write, and two
processes writing at once. After each, nothing may be lost, duplicated or half-written.

Each test appends what it injected to ``FAULTS``; the session summary lists them (conftest).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ephemera_tui.engine import DatabaseError, Draft, Engine, Settings
from ephemera_tui.engine.store import FRAGMENTS, OUTBOX, TAGS
from tests.helpers import EPHEMERA, run_ephemera

FAULTS: Counter[str] = Counter()


def table_counts(engine: Engine) -> tuple[int, int, int]:
    with engine.store.read() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for t in (FRAGMENTS, TAGS, OUTBOX)
        )


def assert_all_searchable_by_meaning(engine: Engine, expected: int, sample: int = 150) -> None:
    """Every memory has a vector with its content hash, and a sample is found by meaning: the
    vector search for its own text ranks it first (the fake embedder hashes words into 384
    slots, so another text may tie with it at cosine 1.0)."""
    assert engine.count() == expected
    report = engine.check()
    assert report.vector_status == "ok"
    assert report.problems == 0 and report.pending == 0, report.to_dict()
    vectors = engine.vectors()
    assert vectors is not None and vectors.count() == expected
    memories = list(engine.store.iter_all())
    for memory in random.Random(7).sample(memories, min(sample, len(memories))):
        found = vectors.search(engine.embedder.embed_query(memory.content), 10, exact=True)
        assert memory.id in [pid for pid, score in found if score > 0.9999], memory


# ---------------------------------------------------------------------------- kill -9


@pytest.mark.slow
def test_kill_9_during_import_and_sync_loses_nothing(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    n = 5000
    source = tmp_path / "memories.jsonl"
    with source.open("w") as out:
        for i in range(n):
            record = {
                "content": f"memory {i}: {['river', 'bread', 'garden', 'sailing'][i % 4]} "
                f"walk number {i} with word{i % 113} and thing{i % 37}",
                "created_at": 1_600_000_000 + i * 60,
                "source": ["note", "chat"][i % 2],
                "tags": [f"t{i % 5}"],
            }
            out.write(json.dumps(record) + "\n")
    rng = random.Random(int(os.environ.get("EPHEMERA_FAULT_SEED", "5")))
    seen_partial: list[int] = []
    with Engine(settings) as probe:
        for _ in range(3):
            proc = subprocess.Popen(
                [*EPHEMERA, "import", str(source), "--batch-size", "200"],
                env=cli_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # Kill at a random moment once it has started writing (startup takes ~1 s).
            before = probe.count()
            deadline = time.time() + 60
            while probe.count() == before and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            FAULTS["kill -9 import"] += 1
            seen_partial.append(probe.count())
    assert seen_partial[0] < n, "the first kill should land before the import finished"
    # A kill -9 in the middle of draining the outbox as well.
    with Engine(settings) as engine:
        engine.store.requeue([m.id for m in engine.store.iter_all()], "upsert")
    proc = subprocess.Popen(
        [*EPHEMERA, "sync"], env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(rng.uniform(1.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    FAULTS["kill -9 sync"] += 1

    again = run_ephemera("import", str(source), "--json", env=cli_env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["imported"] + summary["skipped"] == n
    synced = run_ephemera("sync", env=cli_env)
    assert synced.returncode == 0, synced.stderr
    with Engine(settings) as engine:
        contents = [m.content for m in engine.store.iter_all()]
        assert len(contents) == len(set(contents)) == n  # nothing missing, no duplicates
        assert table_counts(engine) == (n, n, 0)
        assert_all_searchable_by_meaning(engine, n)
        hits = engine.search("sailing walk number 4003").hits
        assert hits[0].memory.content.startswith("memory 4003:")
        assert hits[0].semantic_rank is not None
    FAULTS["memories lost"] += 0


# ---------------------------------------------------------------------------- vector store down


HOLD_SHARD = textwrap.dedent(
    """
    import sys, qdrant_edge
    shard = qdrant_edge.EdgeShard.load(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.read()
    shard.close()
    """
)


def test_vector_store_held_by_another_process(settings: Settings, cli_env: dict[str, str]) -> None:
    with Engine(settings) as engine:
        first = engine.add(Draft(content="the first memory, indexed at once"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SHARD, str(settings.vectors_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        FAULTS["vector store locked by another process"] += 1
        added = run_ephemera("add", "a lighthouse on the northern cape", "-t", "trip", env=cli_env)
        assert added.returncode == 0, added.stderr
        assert "semantic indexing deferred" in added.stderr and "another process" in added.stderr
        new_id = int(added.stdout)
        found = run_ephemera("search", "lighthouse", "--json", env=cli_env)
        assert found.returncode == 0
        assert "keyword results only" in found.stderr
        assert [h["id"] for h in json.loads(found.stdout)] == [new_id]
        with Engine(settings) as engine:
            result = engine.search("lighthouse cape")
            assert result.mode == "keyword" and result.notices
            assert engine.pending() == 1
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    with Engine(settings) as engine:  # the store is back: the next sync catches up
        report = engine.sync()
        assert report.upserted == 1 and report.remaining == 0
        result = engine.search("lighthouse cape")
        assert result.mode == "hybrid" and not result.notices
        assert result.hits[0].memory.id == new_id and result.hits[0].semantic_rank == 1
        assert_all_searchable_by_meaning(engine, 2)
        assert first.id in {m.id for m in engine.store.iter_all()}


def test_vector_store_files_unreadable(settings: Settings) -> None:
    with Engine(settings) as engine:
        engine.add(Draft(content="before the damage"))
    shard = settings.vectors_path
    aside = shard.with_name("moved-away")
    shard.rename(aside)
    shard.write_text("not a shard")  # a file where the shard directory should be
    FAULTS["vector store files unreadable"] += 1
    try:
        with Engine(settings) as engine:
            memory = engine.add(Draft(content="written while the files are broken"))
            assert engine.vector_status != "ok"
            result = engine.search("broken files")
            assert result.mode == "keyword" and result.hits[0].memory.id == memory.id
            assert any("keyword results only" in n for n in result.notices)
    finally:
        shard.unlink()
        aside.rename(shard)
    with Engine(settings) as engine:
        assert engine.sync().remaining == 0
        assert_all_searchable_by_meaning(engine, 2)


def test_qdrant_server_refusing_connections(settings: Settings, tmp_path: Path) -> None:
    down = replace(settings, qdrant_url="http://127.0.0.1:9")
    with Engine(down) as engine:
        FAULTS["qdrant server refusing connections"] += 1
        memory = engine.add(Draft(content="a note written while qdrant is down"))
        assert "unavailable" in engine.vector_status
        result = engine.search("qdrant down")
        assert result.mode == "keyword" and result.hits[0].memory.id == memory.id
        assert any("keyword results only" in n for n in result.notices)
        assert engine.pending() == 1
    # The server "comes back" (qdrant-client's local mode stands in for it).
    back = replace(settings, qdrant_url=f"local:{tmp_path / 'qdrant'}")
    with Engine(back) as engine:
        assert engine.sync().upserted == 1
        assert_all_searchable_by_meaning(engine, 1)


# ---------------------------------------------------------------------------- database down


def test_database_unreachable_is_one_clear_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for url in ("mysql+pymysql://root@127.0.0.1:1/ephemera", f"sqlite:///{blocker}/ephemera.db"):
        result = run_ephemera("add", "hello", env={**cli_env, "EPHEMERA_DATABASE_URL": url})
        FAULTS["database unreachable"] += 1
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ephemera: error: database "), lines
        assert "unavailable" in lines[0]


def test_connection_dropped_mid_write_leaves_nothing_half_written(
    settings: Settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine(settings) as engine:
        engine.add(Draft(content="before the fault"))
        original = engine.store._enqueue

        def drop_then_enqueue(conn, items):  # type: ignore[no-untyped-def]
            # The fragment and its tags are already written in this transaction.
            if engine.store.is_mysql:
                conn_id = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
                from sqlalchemy import create_engine

                admin = create_engine(db_url)
                with admin.connect() as other:
                    other.exec_driver_sql(f"KILL {int(conn_id)}")
                admin.dispose()
            else:
                from sqlalchemy.exc import OperationalError

                raise OperationalError("INSERT", {}, Exception("disk I/O error"))
            return original(conn, items)

        monkeypatch.setattr(engine.store, "_enqueue", drop_then_enqueue)
        with pytest.raises(DatabaseError) as err:
            engine.add(Draft(content="lost in the fault", tags=("x", "y")))
        FAULTS["connection dropped mid-write"] += 1
        assert "\n" not in str(err.value)
        assert table_counts(engine) == (1, 0, 0)  # no fragment, tags or outbox row of it
        monkeypatch.setattr(engine.store, "_enqueue", original)
        # The same engine keeps working once the database answers again.
        engine.add(Draft(content="after the fault", tags=("z",)))
        assert table_counts(engine) == (2, 1, 0)
        assert engine.check().problems == 0


class Proxy:
    """A TCP proxy to the database that can be taken down and brought back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            # shutdown wakes the accept() of the serving thread (close alone does not on Linux)
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_database_goes_away_and_comes_back(mysql_url: str, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(mysql_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 3306))
    proxy.up()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
        embedding_model="fake-hash-384",
    )
    try:
        with Engine(settings) as engine:
            engine.add(Draft(content="while the database is up"))
            proxy.down()
            FAULTS["database went away (connections cut, port closed)"] += 1
            for attempt in range(2):
                with pytest.raises(DatabaseError) as err:
                    engine.add(Draft(content=f"while it is down {attempt}"))
                assert "\n" not in str(err.value)
            with pytest.raises(DatabaseError):
                engine.search("database")
            proxy.up()
            engine.add(Draft(content="after it came back"))
            contents = sorted(m.content for m in engine.store.iter_all())
            assert contents == ["after it came back", "while the database is up"]
            assert engine.pending() == 0 and engine.check().problems == 0
    finally:
        proxy.down()


# ---------------------------------------------------------------------------- two writers


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ephemera_tui.engine import Draft, Engine, Settings
    data_dir, url, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    settings = Settings(data_dir=Path(data_dir), database_url=url, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        ids = [engine.add(Draft(content=f"{tag} writes memory {i}", tags=(tag,))).id
               for i in range(n)]
    print(len(ids), len(set(ids)))
    """
)


@pytest.mark.slow
def test_two_processes_adding_at_once(settings: Settings, db_url: str) -> None:
    n = 1000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(settings.data_dir), db_url, tag, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("alpha", "beta")
    ]
    FAULTS["two concurrent writer processes"] += 1
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.split() == [str(n), str(n)]
    with Engine(settings) as engine:
        ids = [m.id for m in engine.store.iter_all()]
        assert len(ids) == len(set(ids)) == 2 * n
        assert engine.sync().remaining == 0  # the process that lacked the shard left a queue
        assert_all_searchable_by_meaning(engine, 2 * n, sample=50)
        assert dict(engine.tags()) == {"alpha": n, "beta": n}
