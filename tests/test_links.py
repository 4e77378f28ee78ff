"""Reverse links come from ``memory_links``, kept in step with every memory's associations by
each write (add, edit, link, unlink, delete), rebuilt by a restore, and filled by the upgrade
from the associations already stored; on SQLite and MariaDB."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup.sets import create_backup, restore_backup
from ephemera_tui.engine.store import LINKS
from ephemera_tui.engine.store.connection import make_sql_engine
from tests.conftest import FixedClock
from tests.helpers import migrate_to
from tests.test_backup import wipe


def incoming(engine: Engine, memory_id: int) -> list[int]:
    return [m.id for m in engine.neighbours(memory_id)[1]]


def link_rows(engine: Engine) -> set[tuple[int, int]]:
    with engine.store.read() as conn:
        return {
            (int(a), int(b)) for a, b in conn.execute(select(LINKS.c.memory_id, LINKS.c.target_id))
        }


def stored_links(engine: Engine) -> set[tuple[int, int]]:
    """What the associations themselves say (the truth the table must mirror)."""
    return {(m.id, t) for m in engine.browse(limit=1000) for t in m.associations}


def test_every_write_keeps_the_links_in_step(engine: Engine, clock: FixedClock) -> None:
    target = engine.add(Draft("the lake at dawn"))
    # ids that share digits with the target's, which a text search of the JSON would confuse
    a = engine.add(Draft("swim before work", associations=(target.id,)))
    clock.advance(1)
    b = engine.add(Draft("cold water again"))
    engine.link(b.id, target.id)
    assert incoming(engine, target.id) == [a.id, b.id]
    assert link_rows(engine) == stored_links(engine) == {(a.id, target.id), (b.id, target.id)}

    engine.update(a.id, Draft("swim before work, no lake today"), expected_revision=None)
    assert incoming(engine, target.id) == [b.id]
    engine.update(a.id, Draft("swim after all", associations=(target.id, b.id, target.id)))
    assert incoming(engine, target.id) == [a.id, b.id] and incoming(engine, b.id) == [a.id]
    engine.unlink(target.id, b.id)
    assert incoming(engine, target.id) == [a.id]
    assert link_rows(engine) == stored_links(engine)

    engine.delete(target.id)
    assert engine.get(a.id).associations == (b.id,)
    assert link_rows(engine) == stored_links(engine) == {(a.id, b.id)}
    engine.delete(a.id)
    assert link_rows(engine) == set() and incoming(engine, b.id) == []


def test_a_restore_rebuilds_the_links(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    with Engine(settings, clock=clock) as engine:
        target = engine.add(Draft("the old bridge"))
        others = [engine.add(Draft(f"crossed it {n}", associations=(target.id,))) for n in range(3)]
        made = create_backup(engine, tmp_path / "backups")
    wipe(settings)
    with Engine(settings, clock=clock) as engine:
        restore_backup(engine, made.path)
        assert incoming(engine, target.id) == [m.id for m in others]
        assert link_rows(engine) == stored_links(engine)


def test_the_upgrade_fills_links_from_stored_associations(settings: Settings) -> None:
    migrate_to(settings.resolved_database_url, "0004_tag_fold")
    sql = make_sql_engine(settings.resolved_database_url)
    with sql.connect().execution_options(ephemera_write=True) as conn, conn.begin():
        for n, links in enumerate(["[]", "[1700000000000]", "[1700000000000, 1700000000001]"]):
            conn.execute(
                text(
                    "INSERT INTO memory_fragments (id, content, created_at, source, tags, "
                    "associations) VALUES (:id, :content, 1700000000, 'note', '[]', :links)"
                ),
                {"id": 1700000000000 + n, "content": f"memory {n}", "links": links},
            )
    sql.dispose()
    with Engine(settings) as engine:  # opening migrates to head, filling memory_links
        assert incoming(engine, 1700000000000) == [1700000000001, 1700000000002]
        assert incoming(engine, 1700000000001) == [1700000000002]
        with engine.store.read() as conn:
            assert conn.execute(select(func.count()).select_from(LINKS)).scalar() == 3
