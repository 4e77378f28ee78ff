"""The HNSW build in the background: a builder process indexes a copy of the embedded store
while this process keeps searching and writing; the copy then takes over with nothing lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.sync.worker import Worker, WorkerRun, health
from ephemera_tui.engine.vectors.base import HEAD_ROWS, ROWS
from ephemera_tui.engine.vectors.index import BUILD_KEY, LAST_BUILD_KEY

from .conftest import FixedClock, fill_numbered
from .test_vector_rows import LONG, make_old_shard

pytestmark = pytest.mark.slow


def _until_finished(worker: Worker, timeout: float = 180.0) -> WorkerRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = worker.run_once()
        if not worker.indexer.active:
            return run
        time.sleep(0.2)
    raise AssertionError("the background index build did not finish")


def test_build_runs_beside_search_and_writes_then_takes_over(
    settings: Settings, clock: FixedClock
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 8000)  # ~12 MB of vectors: qdrant indexes segments from ~10 MB up
        old_shard = engine.vectors_path
        (exported,) = engine.browse(limit=1, offset=20)
        engine.update(exported.id, Draft(LONG, created_at=exported.created_at))  # rows: exported
        worker = Worker(engine, index_threshold=1000)
        started = worker.run_once()
        assert started.index is not None and "building the HNSW index of 8000" in started.index
        assert worker.indexer.active and health(engine).index_building

        # meanwhile: capture, edit, delete, and search by meaning in this process
        added = engine.add(Draft("a violet kite over the harbour during the build"))
        first, second = engine.browse(limit=2, offset=10)
        rewritten = "Rewritten while the index was building. " + LONG  # rows: replayed
        engine.update(first.id, Draft(rewritten, created_at=first.created_at))
        engine.delete(second.id)
        during = engine.search("violet kite harbour")
        assert during.notices == () and during.mode == "hybrid"
        assert during.hits[0].memory.id == added.id
        assert engine.vectors() is not None

        finished = _until_finished(worker)
        assert finished.errors == []
        assert finished.index is not None and finished.index.startswith("HNSW index built")

        assert engine.vector_collection().startswith("ephemera_memory_vectors__hnsw")
        assert engine.vectors().format == HEAD_ROWS  # type: ignore[union-attr]
        assert not old_shard.exists()  # the old shard was dropped
        info = engine.vectors().index_info()  # type: ignore[union-attr]
        assert info["points"] == engine.count() == 8000
        assert 7000 <= info["indexed"] <= 8000  # points indexed, not vectors
        assert engine.check().problems == 0  # the writes made during the build were replayed
        assert engine.search("violet kite harbour").hits[0].memory.id == added.id
        assert engine.search("rewritten").hits[0].memory.id == first.id
        rows = engine.vectors().vectors([exported.id, first.id], rows=True)  # type: ignore[union-attr]
        assert {k: len(v) for k, v in rows.items()} == {exported.id: 6, first.id: 7}
        last = json.loads(engine.store.get_meta(LAST_BUILD_KEY) or "{}")
        assert last["replayed"] == 3 and last["points"] == 8000
        assert not health(engine).index_building
        assert not list(old_shard.parent.glob("*.build"))

        # the next build starts only once enough vectors are unindexed again
        assert worker.run_once().index is None


def test_a_build_moves_a_store_of_rows_to_head_rows(settings: Settings, clock: FixedClock) -> None:
    """A store whose rows were indexed as a whole (an earlier version's format) comes back
    from a background build in the head+rows format with every row, without a re-embed."""
    with Engine(settings, clock=clock) as engine:
        path = engine.vectors_path
    path.mkdir(parents=True)
    make_old_shard(path, 384, ROWS)
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 1500)
        long = engine.add(Draft(LONG))
        engine.sync()
        assert engine.vectors().format == ROWS  # type: ignore[union-attr]
        worker = Worker(engine, index_threshold=1000)
        assert worker.run_once().index is not None
        assert _until_finished(worker).errors == []
        vectors = engine.vectors()
        assert vectors is not None and vectors.format == HEAD_ROWS  # type: ignore[attr-defined]
        assert len(vectors.vectors([long.id], rows=True)[long.id]) == 6
        assert vectors.count() == engine.count() == 1501
        assert engine.search("heron in the estuary").hits[0].memory.id == long.id
        assert engine.check().problems == 0


def test_the_hand_over_waits_for_the_user_to_pause(settings: Settings, clock: FixedClock) -> None:
    idle = [False]
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 2000)
        active = engine.vector_collection()
        worker = Worker(engine, index_threshold=1000, idle=lambda: idle[0])
        worker.run_once()
        process = worker.indexer._process  # noqa: SLF001
        assert process is not None
        process.wait(timeout=120)
        for _ in range(3):  # the copy is ready, but the user is typing
            assert worker.run_once().index is None
            assert worker.indexer.active and engine.vector_collection() == active
        idle[0] = True
        assert (worker.run_once().index or "").startswith("HNSW index built")
        assert engine.vector_collection() != active


def test_a_reopened_engine_keeps_the_rebuilt_store(settings: Settings, clock: FixedClock) -> None:
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 3000)
        worker = Worker(engine, index_threshold=1000)
        worker.run_once()
        _until_finished(worker)
        collection = engine.vector_collection()
    with Engine(settings, clock=clock) as engine:
        assert engine.vector_collection() == collection
        assert engine.vectors() is not None
        assert engine.check().problems == 0
        assert engine.search("topic7 theme3 tag:t2").hits


def test_a_failed_build_leaves_the_old_store_serving(settings: Settings, clock: FixedClock) -> None:
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 3000)
        active = engine.vector_collection()
        worker = Worker(engine, index_threshold=1000)
        worker.run_once()
        process = worker.indexer._process  # noqa: SLF001 - kill the builder mid-way
        assert process is not None
        process.kill()
        process.wait()
        run = worker.run_once()
        assert any("background index build failed" in e for e in run.errors)
        assert engine.vector_collection() == active
        assert engine.vectors() is not None and engine.check().problems == 0
        leftovers = [p for p in engine.vectors_path.parent.iterdir() if "__hnsw" in p.name]
        assert leftovers == []
        assert not engine.store.get_meta(BUILD_KEY)
        assert "error" in json.loads(engine.store.get_meta(LAST_BUILD_KEY) or "{}")
        assert worker.run_once().index is None  # no retry within the hour
        clock.advance(3601)
        assert "building" in (worker.run_once().index or "")
        _until_finished(worker)
        assert engine.vector_collection() != active


def test_a_cancelled_build_starts_again_without_waiting(
    settings: Settings, clock: FixedClock
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 2000)
        worker = Worker(engine, index_threshold=1000)
        worker.run_once()
        worker.indexer.cancel("the app closed")  # what the app does when it quits
        assert not worker.indexer.active and not engine.store.get_meta(BUILD_KEY)
        assert [p for p in engine.vectors_path.parent.iterdir() if "__hnsw" in p.name] == []
        last = json.loads(engine.store.get_meta(LAST_BUILD_KEY) or "{}")
        assert last.get("cancelled") == "the app closed" and "error" not in last
        assert "building" in (worker.run_once().index or "")  # no hour-long back-off
        worker.indexer.cancel("test over")


def test_a_store_reopened_during_the_build_drops_the_copy(
    settings: Settings, clock: FixedClock
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill_numbered(engine, 2000)
        active = engine.vector_collection()
        worker = Worker(engine, index_threshold=1000)
        worker.run_once()
        engine.release_vectors()  # as a manual snapshot does: the journal ends with the store
        assert engine.vectors() is not None
        run = _until_finished(worker)
        assert any("closed or switched" in e for e in run.errors)
        assert engine.vector_collection() == active
        assert engine.check().problems == 0


def test_nothing_is_built_below_the_threshold_or_when_turned_off(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        fill_numbered(engine, 500)
        assert Worker(engine, index_threshold=1000).run_once().index is None
        assert Worker(engine, index_threshold=0).run_once().index is None
        assert Settings().index_threshold == 20_000
