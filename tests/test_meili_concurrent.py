"""Two ``migrate meili import`` runs at once (two engines on one database: two processes).

New memories must take their ids from the store's allocator, which retries past ids another
process took in the same milliseconds — as ``ephemera add`` does — and a document two runs
both imported must end up as one memory. SQLite and MariaDB through ``db_url``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.migration import importer as importer_module
from ephemera_tui.migration import state
from ephemera_tui.migration.importer import Importer, MigrationReport
from ephemera_tui.migration.mapping import build_mapping
from ephemera_tui.migration.readers import read_sources
from tests.conftest import FixedClock
from tests.test_meili_support import REAL_DUMP_FILES, real_dump


@pytest.fixture
def two_engines(tmp_path: Path, db_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on the same database, each with its own vector store, and one clock: their
    id allocators start at the same millisecond, as two processes started together would."""
    clock = FixedClock()
    engines = [
        Engine(
            Settings(
                data_dir=tmp_path / f"data-{n}",
                database_url=db_url,
                embedding_model="fake-hash-384",
            ),
            clock=clock,
        )
        for n in (1, 2)
    ]
    try:
        yield engines[0], engines[1]
    finally:
        for engine in engines:
            engine.close()


def run(engine: Engine, dump: Path, index: str | None = None) -> list[MigrationReport]:
    sources = read_sources(dump, index=index)
    plans = [
        (s, build_mapping([d.data for d in s.documents], {}, s.primary_key, s.settings))
        for s in sources
    ]
    return Importer(engine).run_many(plans)


def test_two_runs_do_not_collide_on_ids(two_engines: tuple[Engine, Engine]) -> None:
    first, second = two_engines
    v5 = real_dump(REAL_DUMP_FILES["V5"])
    [a] = run(first, v5, "test")
    [b] = run(second, v5, "test2")  # same clock: its allocator hands out the same ids
    assert (a.imported, b.imported) == (10, 10)
    assert first.count() == 20
    assert len(set(a.ids) | set(b.ids)) == 20


def test_a_document_claimed_by_another_run_is_not_kept_twice(
    two_engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_engines
    v1 = real_dump(REAL_DUMP_FILES["V1"])
    [done] = run(first, v1)
    assert done.imported == 53

    # The second run looked before the first one claimed its documents (the race): it sees
    # none of them, writes its own copies, then loses every claim and removes them.
    real = state.mappings_by_key
    calls = {"n": 0}

    def stale_once(store: Any, index_uid: str, keys: Any) -> dict[str, state.MappingRow]:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(store, index_uid, keys)

    monkeypatch.setattr(importer_module.state, "mappings_by_key", stale_once)
    [late] = run(second, v1)
    assert late.imported == 0
    assert late.reasons == {"already present": 53}
    assert first.count() == 53
    assert state.mapping_count(first.store) == 53


def test_two_runs_at_the_same_time_keep_one_memory_per_document(
    two_engines: tuple[Engine, Engine],
) -> None:
    v1 = real_dump(REAL_DUMP_FILES["V1"])
    barrier = threading.Barrier(2)
    reports: list[MigrationReport] = []
    errors: list[BaseException] = []

    def worker(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            reports.extend(run(engine, v1))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(e,)) for e in two_engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert sum(r.imported for r in reports) == 53
    assert two_engines[0].count() == 53
    assert state.mapping_count(two_engines[0].store) == 53
