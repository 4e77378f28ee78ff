"""Schema upgrades: a database made by the first revision upgrades in place, data intact."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.store.connection import MIGRATIONS_DIR, make_sql_engine
from tests.helpers import migrate_to


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def test_first_revision_database_upgrades_to_head(settings: Settings) -> None:
    cfg = _config()
    migrate_to(settings.resolved_database_url, "0001")
    sql = make_sql_engine(settings.resolved_database_url)
    with sql.connect().execution_options(ephemera_write=True) as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO memory_fragments (id, content, created_at, source, importance, "
                "confidence, tags, notes, associations) VALUES "
                "(1700000000000, 'made by revision 0001', 1700000000, 'note', 1, 2, "
                "'[\"Old\", \"Ärger\"]', NULL, '[]')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO memory_tags (memory_id, tag) VALUES "
                "(1700000000000, 'Old'), (1700000000000, 'Ärger')"
            )
        )
    sql.dispose()

    with Engine(settings) as engine:  # opening migrates to head
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with engine.store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        old = engine.get(1700000000000)
        assert old.content == "made by revision 0001" and old.tags == ("Old", "Ärger")
        for tag in ("old", "ärger", "ÄRGER"):  # the folded forms were filled, non-ASCII too
            assert engine.count(engine.parse(f"tag:{tag}").filter) == 1, tag
        assert engine.search("revision").hits[0].memory.id == old.id
        engine.add(Draft("written after the upgrade"))
        assert engine.count() == 2


def test_downgrade_and_upgrade_round_trip(settings: Settings) -> None:
    with Engine(settings) as engine:
        engine.add(Draft("kept"))
    cfg = _config()
    sql = make_sql_engine(settings.resolved_database_url)
    with sql.connect().execution_options(ephemera_write=True) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        command.upgrade(cfg, "head")
        conn.commit()
    sql.dispose()
    with Engine(settings) as engine:
        assert engine.count() == 1


def test_processes_opening_a_fresh_database_at_once_migrate_once(
    settings: Settings, tmp_path: Path
) -> None:
    """Several processes, imports done, open one fresh database at the same instant."""
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from ephemera_tui.engine import Engine, Settings\n"
        "import ephemera_tui.engine.core, alembic.command\n"
        "s = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2],\n"
        "             embedding_model='fake-hash-384')\n"
        "print('ready', flush=True)\n"
        "while not Path(sys.argv[3]).exists():\n"
        "    time.sleep(0.001)\n"
        "try:\n"
        "    Engine(s).store.close()\n"
        "except Exception as exc:\n"
        "    import traceback\n"
        "    traceback.print_exception(exc.__context__ or exc)\n"
        "    raise\n"
    )
    args = [str(settings.data_dir), settings.resolved_database_url, str(go)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.05)
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)
    with Engine(settings) as engine:
        assert engine.count() == 0
