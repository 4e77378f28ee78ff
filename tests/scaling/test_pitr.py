"""Point-in-time recovery on the binlog-enabled primary: write, back up, write more, restore to
a moment between (``ephemera restore SET --until``). The binlog after the set is replayed for
Ephemera's tables only: what was written before the moment is back, what came after is not,
and writes to other tables and databases are left out."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup import create_backup
from ephemera_tui.engine.backup.binlog import keep_statement, statements
from tests.helpers import invoke_ephemera
from tests.scaling.servers import MariaDBPair


def _settings(data_dir: Path, url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, embedding_model="fake-hash-384")


def _env(tmp_path: Path, data_dir: Path, url: str) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    return {
        "EPHEMERA_DATA_DIR": str(data_dir),
        "EPHEMERA_DATABASE_URL": url,
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "EPHEMERA_SERVICE": "off",
    }


def test_restore_until_a_moment_between_the_backup_and_later_writes(
    tmp_path: Path, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    primary = mariadb_pair.primary
    with Engine(_settings(tmp_path / "source", primary.url(pair_db))) as engine:
        kept = engine.add(Draft("written before the backup", tags=("early",)))
        doomed = engine.add(Draft("deleted between the backup and the moment"))
        made = create_backup(engine, tmp_path / "backups")
        position = made.manifest["binlog"]
        assert position["flavor"] == "mariadb" and position["exact"]
        assert position["file"].startswith("binlog.") and position["position"] > 4
        assert position["database"] == pair_db and position["gtid"]
        between = engine.add(Draft("written after the backup, before the moment"))
        engine.update(kept.id, Draft("edited after the backup", tags=("early", "edited")))
        engine.link(between.id, kept.id)  # memory_links is rebuilt after the replay
        engine.delete(doomed.id)
        # Writes the replay must leave out: another database, and a non-backed-up table.
        primary.sql(
            "CREATE DATABASE IF NOT EXISTS pitr_other",
            "CREATE TABLE IF NOT EXISTS pitr_other.t (id INT PRIMARY KEY)",
            "REPLACE INTO pitr_other.t VALUES (1)",
        )
        engine.store.set_meta("probe", "written after the backup")
        started = time.time()
        moment = int(started) + 2  # every event so far is stamped before this second
        time.sleep(moment - started + 0.3)
        late = engine.add(Draft("written after the moment: not restored"))
        engine.delete(between.id)  # after the moment: must not happen in the restore

    target = f"{pair_db}_r"
    primary.sql(f"CREATE DATABASE {target} CHARACTER SET utf8mb4")
    try:
        env = _env(tmp_path, tmp_path / "target", primary.url(target))
        until = datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")
        done = invoke_ephemera("restore", str(made.path), "--until", until, "--json", env=env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["binlog"]["until"] == until
        assert report["binlog"]["transactions"] >= 3 and report["binlog"]["skipped"] > 0
        with Engine(_settings(tmp_path / "target", primary.url(target))) as restored:
            memories = {m.id: m for m in restored.iter_all()}
            assert set(memories) == {kept.id, between.id}
            assert memories[kept.id].content == "edited after the backup"
            assert memories[kept.id].tags == ("early", "edited")
            assert late.id not in memories and doomed.id not in memories
            assert restored.store.get_meta("probe") is None  # ephemera_meta is not replayed
            assert restored.tags() == [("early", 1), ("edited", 1)]
            assert [m.id for m in restored.neighbours(kept.id)[1]] == [between.id]
            check = restored.check()
            assert check.problems == 0 and check.pending == 0
            hits = restored.search("before the moment").hits
            assert hits and hits[0].memory.id == between.id
    finally:
        primary.sql(f"DROP DATABASE IF EXISTS {target}", "DROP DATABASE IF EXISTS pitr_other")


def test_restore_until_refuses_what_it_cannot_do(
    tmp_path: Path, mariadb_pair: MariaDBPair, pair_db: str
) -> None:
    primary = mariadb_pair.primary
    with Engine(_settings(tmp_path / "source", primary.url(pair_db))) as engine:
        engine.add(Draft("one"))
        made = create_backup(engine, tmp_path / "backups")
    env = _env(tmp_path, tmp_path / "target", primary.url(pair_db))
    before = datetime.fromtimestamp(made.manifest["created_at"] - 3600)
    done = invoke_ephemera(
        "restore", str(made.path), "--until", f"{before:%Y-%m-%d %H:%M}", env=env
    )
    assert done.returncode == 1 and "before the backup set was taken" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = invoke_ephemera("restore", str(made.path), "--until", "whenever", env=env)
    assert done.returncode == 1 and "--until: cannot understand" in done.stderr
    done = invoke_ephemera("restore", str(made.path), "--binlog-from", "/tmp", env=env)
    assert done.returncode == 1 and "--binlog-from needs --until" in done.stderr


def test_a_sqlite_set_has_no_binlog_to_replay(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with Engine(_settings(tmp_path / "source", url)) as engine:
        engine.add(Draft("one"))
        made = create_backup(engine, tmp_path / "backups")
    assert "binlog" not in made.manifest
    env = _env(tmp_path, tmp_path / "target", f"sqlite:///{tmp_path / 'dst.db'}")
    done = invoke_ephemera("restore", str(made.path), "--until", "now", env=env)
    assert done.returncode == 1 and "records no binlog position" in done.stderr


SAMPLE = """/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;
DELIMITER /*!*/;
# at 4
BINLOG '
aJUOaw8BAAAA
'/*!*/;
/*M!100001 SET @@session.gtid_seq_no=5*//*!*/;
START TRANSACTION
/*!*/;
#Q> insert into e1.memory_fragments values (1)
#261201  9:38:09 server id 1	Table_map: `e1`.`memory_fragments` mapped to number 18
BINLOG '
gZUOaxMBAAAALAAAADQEAAAAABIAAAAAAAEAAmUxAAF0AAID/AECAgFr/sg=
'/*!*/;
#261201  9:38:09 server id 1	Table_map: `e1`.`ephemera_meta` mapped to number 19
BINLOG '
gZUOaxcBAAAAKQAAAF0EAAAAABIAAAAAAAEAAgP8AQAAAAEAYbGRjig=
'/*!*/;
COMMIT/*!*/;
use `e1`/*!*/;
INSERT INTO memory_tags (memory_id, tag) VALUES (1, 'a;b')
/*!*/;
UPDATE `other`.`memory_tags` SET tag = 'x'
/*!*/;
create table e1.extra (id int)
/*!*/;
DELIMITER ;
ROLLBACK /* added by mysqlbinlog */;
"""


@pytest.mark.parametrize(
    ("index", "verdict"),
    [(0, "keep"), (1, "keep"), (2, "skip"), (3, "keep"), (4, "keep"), (5, "skip")]
    + [(6, "keep"), (7, "keep"), (8, "keep"), (9, "skip"), (10, "ddl"), (11, "keep")],
)
def test_the_filter_keeps_only_ephemera_tables(index: int, verdict: str) -> None:
    found = list(statements(SAMPLE.splitlines(keepends=True)))
    assert len(found) == 12
    statement, tables = found[index]
    assert keep_statement(statement, tables, "e1", "e1") == verdict, statement
