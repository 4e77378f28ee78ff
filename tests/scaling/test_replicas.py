"""Read replicas on a real MariaDB pair: reads go to the replica, a process reads its own
writes at once, a stopped, lagging or unreachable replica is skipped without an error, reads
return to it once it has caught up, and its state (lag, notice, counters) is visible.

A memory written on the replica alone (root may write past read_only) tells which server
answered a read: only the replica has it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.config import load_settings
from ephemera_tui.engine.errors import ConfigError, DatabaseError
from ephemera_tui.engine.store import SqlStore
from tests.scaling.servers import MariaDBPair, free_port

MARKER_ID = 999_000_000_001
MARKER = "seen only on the replica"


def _engine(
    tmp_path: Path, pair: MariaDBPair, db: str, max_lag_s: float = 5.0, extra: tuple[str, ...] = ()
) -> Engine:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=pair.primary.url(db),
        embedding_model="fake-hash-384",
    )
    engine = Engine(settings)
    engine.store.use_replicas([pair.replica.url(db), *extra], max_lag_s=max_lag_s)
    assert engine.store.replicas is not None
    engine.store.replicas.set_check_every(0)  # re-read the replication state on every read
    return engine


@pytest.fixture
def engine(tmp_path: Path, mariadb_pair: MariaDBPair, pair_db: str) -> Iterator[Engine]:
    eng = _engine(tmp_path, mariadb_pair, pair_db)
    mariadb_pair.wait_caught_up()
    mariadb_pair.replica.sql(
        f"INSERT INTO {pair_db}.memory_fragments (id, content, created_at, source, tags, "
        f"associations, revision) VALUES ({MARKER_ID}, '{MARKER}', 1700000000, 'test', "
        "'[]', '[]', 1)"
    )
    try:
        yield eng
    finally:
        eng.close()


def _from_replica(engine: Engine) -> bool:
    """Whether the timeline was read from the replica (only it holds the marker)."""
    return MARKER_ID in {m.id for m in engine.browse(limit=1000)}


def _eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _state(engine: Engine) -> dict[str, object]:
    return engine.store.replica_states()[0].to_dict()


class ReplicaLock:
    """Hold ``LOCK TABLES memory_fragments READ`` on the replica: its SQL thread keeps running
    but cannot apply writes to the table, as if it had fallen behind."""

    def __init__(self, pair: MariaDBPair, db: str) -> None:
        self._engine = create_engine(pair.replica.url(db))
        self._conn = self._engine.connect()
        self._conn.execute(text("LOCK TABLES memory_fragments READ"))

    def release(self) -> None:
        self._conn.execute(text("UNLOCK TABLES"))
        self._conn.close()
        self._engine.dispose()


def test_reads_go_to_the_replica_and_writes_to_the_primary(
    engine: Engine, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    assert _from_replica(engine)
    assert engine.store.count(replica_ok=True) == 1  # the marker: counted on the replica
    assert engine.store.count() == 0  # the primary by default
    found = engine.store.keyword_search(["replica"], engine.parse("x").filter, 10)
    assert [mid for mid, _ in found] == [MARKER_ID]
    assert engine.store.get_many([MARKER_ID], replica_ok=True)
    assert not engine.store.get_many([MARKER_ID])
    assert ("test", 1) in engine.sources()
    memory = engine.add(Draft("written through the engine", tags=("pair",)))
    assert mariadb_pair.primary.sql(
        f"SELECT content FROM {pair_db}.memory_fragments WHERE id = {memory.id}"
    ) == [["written through the engine"]]
    state = _state(engine)
    assert state["status"] == "ok" and state["lag_s"] == 0 and int(str(state["reads"])) >= 4


def test_a_write_is_read_back_at_once_while_the_replica_has_not_applied_it(
    engine: Engine, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    lock = ReplicaLock(mariadb_pair, pair_db)
    try:
        memory = engine.add(Draft("read me back at once"))
        listed = {m.id for m in engine.browse(limit=1000)}
        # The primary answered: it has the new memory and not the replica's marker.
        assert memory.id in listed and MARKER_ID not in listed
        assert engine.count() == 1
        hits = engine.store.keyword_search(["once"], engine.parse("x").filter, 10)
        assert [mid for mid, _ in hits] == [memory.id]
        state = _state(engine)
        assert state["status"] == "ok" and int(str(state["behind_own_writes"])) >= 1
    finally:
        lock.release()
    mariadb_pair.wait_caught_up()
    # Applied there now: the replica answers again, with the new memory too.
    listed = {m.id for m in engine.browse(limit=1000)}
    assert {memory.id, MARKER_ID} <= listed


class Records(logging.Handler):
    """Keeps the records of one logger (the package's log may not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_stopped_replica_is_skipped_and_used_again_when_it_catches_up(
    engine: Engine, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    assert _from_replica(engine)
    mariadb_pair.replica.sql("STOP SLAVE")
    logger = logging.getLogger("ephemera_tui.engine.store.replicas")
    seen = Records()
    logger.addHandler(seen)
    try:
        assert not _from_replica(engine)  # skipped, no error
    finally:
        logger.removeHandler(seen)
    state = _state(engine)
    assert state["status"] == "stopped" and state["lag_s"] is None
    assert "replication stopped" in str(state["notice"])
    assert any("skipped" in r.getMessage() for r in seen.records)
    # Another process writes meanwhile; the replica has to catch up before it serves again.
    mariadb_pair.primary.sql(
        f"INSERT INTO {pair_db}.ephemera_meta (`key`, value) VALUES ('probe', 'x')"
    )
    mariadb_pair.replica.sql("START SLAVE")
    mariadb_pair.wait_caught_up()
    assert _eventually(lambda: _from_replica(engine))
    assert _state(engine)["status"] == "ok"


def test_a_lagging_replica_is_skipped_until_it_is_within_the_limit(
    tmp_path: Path, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    engine = _engine(tmp_path, mariadb_pair, pair_db, max_lag_s=1.0)
    try:
        mariadb_pair.wait_caught_up()
        assert engine.browse() == [] and _state(engine)["status"] == "ok"
        lock = ReplicaLock(mariadb_pair, pair_db)
        try:
            # A write by someone else: the replica's SQL thread waits on the lock and falls
            # behind by the second.
            mariadb_pair.primary.sql(
                f"INSERT INTO {pair_db}.memory_fragments (id, content, created_at, source, tags,"
                " associations, revision) VALUES (5, 'elsewhere', 1700000000, 'x', '[]', '[]', 1)"
            )
            assert _eventually(lambda: _state(engine)["status"] == "lagging", timeout=15)
            state = _state(engine)
            assert float(str(state["lag_s"])) > 1.0 and "behind" in str(state["notice"])
            assert [m.id for m in engine.browse()] == [5]  # the primary answered
        finally:
            lock.release()
        mariadb_pair.wait_caught_up()
        assert _eventually(lambda: _state(engine)["status"] == "ok")
    finally:
        engine.close()


def test_an_unreachable_or_restarting_replica_is_never_an_error(
    tmp_path: Path, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    dead = f"mysql+pymysql://root@127.0.0.1:{free_port()}/{pair_db}"
    engine = _engine(tmp_path, mariadb_pair, pair_db, extra=(dead,))
    try:
        engine.add(Draft("on the primary"))
        for _ in range(4):  # both replicas get turns; the dead one never fails a read
            assert [m.content for m in engine.browse()] == ["on the primary"]
        states = {s.url.rsplit(":", 1)[-1]: s for s in engine.store.replica_states()}
        down = next(s for s in states.values() if s.status == "down")
        assert down.notice is not None and "unreachable" in down.notice
        # The real replica goes away and comes back (replication resumes by itself).
        mariadb_pair.replica.stop()
        assert [m.content for m in engine.browse()] == ["on the primary"]
        assert all(s.status == "down" for s in engine.store.replica_states())
        mariadb_pair.replica.start()
        mariadb_pair.wait_caught_up()
        assert _eventually(
            lambda: any(s.status == "ok" for s in engine.store.replica_states()), timeout=40
        )
    finally:
        engine.close()


def test_replicas_need_a_mysql_primary(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(DatabaseError, match="need a MySQL/MariaDB primary"):
            store.use_replicas(["mysql+pymysql://root@127.0.0.1:1/x"])
    finally:
        store.close()
    (tmp_path / "c.toml").write_text('database_read_urls = ["mysql+pymysql://r@h/db"]\n')
    with pytest.raises(ConfigError, match="need a MySQL/MariaDB database_url"):
        load_settings(env={}, config_path=tmp_path / "c.toml")
    loaded = load_settings(
        env={
            "EPHEMERA_DATABASE_URL": "mysql+pymysql://w@h/db",
            "EPHEMERA_DATABASE_READ_URLS": "mysql+pymysql://r1@h1/db, mysql+pymysql://r2@h2/db",
            "EPHEMERA_REPLICA_MAX_LAG_S": "2.5",
        },
        config_path=tmp_path / "c.toml",
    )
    assert loaded.database_read_urls == ("mysql+pymysql://r1@h1/db", "mysql+pymysql://r2@h2/db")
    assert loaded.replica_max_lag_s == 2.5
    with pytest.raises(ConfigError, match="replica_max_lag_s"):
        load_settings(env={"EPHEMERA_REPLICA_MAX_LAG_S": "-1"}, config_path=tmp_path / "c.toml")
