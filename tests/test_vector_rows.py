"""A memory of several sentences is stored as rows (vectors/rows.py), on every vector backend,
and keeps them through a background index build, a backup and a restore."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup.sets import create_backup, restore_backup
from ephemera_tui.engine.filters import SearchFilter
from ephemera_tui.engine.vectors import VectorPoint
from ephemera_tui.engine.vectors.base import HEAD_ROWS, ONE, ROWS
from ephemera_tui.engine.vectors.edge import EdgeVectors
from ephemera_tui.engine.vectors.rows import (
    MAX_SENTENCES,
    SENTENCE_SHARE,
    compose,
    embed_rows,
    sentences,
    with_sentences,
)
from ephemera_tui.engine.vectors.server import ClientVectors
from tests.conftest import FixedClock
from tests.test_backup import wipe

LONG = (
    "We drove out to the coast before sunrise and parked above the dunes. "
    "The thermos of coffee went cold while we waited for the light. "
    "A heron stood in the shallows of the estuary for nearly an hour. "
    "Later the market in town sold smoked mackerel and rye bread. "
    "On the way home the radio played an old song about lighthouses."
)
SHORT = "Bought a new notebook for the journal."


def test_only_a_memory_of_several_sentences_gets_rows() -> None:
    assert sentences(SHORT) == []
    assert sentences("one " * 50) == []  # long, but a single sentence
    parts = sentences(LONG)
    assert len(parts) == 5 and parts[2].startswith("A heron")
    many = " ".join(f"Sentence number {i} says a little more." for i in range(100))
    assert len(sentences(many)) == MAX_SENTENCES
    assert " ".join(sentences(many)) == many  # merged neighbours lose no words


def test_the_rows_score_a_query_as_the_memory_raised_by_its_best_sentence() -> None:
    rng = np.random.default_rng(7)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    memory, parts, query = unit(1)[0], unit(4), unit(1)[0]
    rows = compose(memory, parts)
    assert rows.shape == (5, 16) and np.array_equal(rows[0], memory)
    whole, best = float(query @ memory), float((parts @ query).max())
    expected = whole + SENTENCE_SHARE * max(0.0, best - whole)
    assert float((rows @ query).max()) == pytest.approx(expected, abs=1e-6)
    assert compose(memory, parts[:0]).shape == (1, 16)

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return unit(len(texts))

    out = embed_rows(embed, [SHORT, LONG])  # type: ignore[arg-type]
    assert len(calls) == 1 and len(calls[0]) == 2 + 5  # one batch: both texts, 5 sentences
    assert [len(r) for r in out] == [1, 6]

    # a vector reused from an import: only the sentences are embedded, and row 0 is scaled
    # to unit length (rows are compared by Dot product)
    calls.clear()
    reused = with_sentences(embed, [memory * 3, memory * 2], [SHORT, LONG])  # type: ignore[arg-type]
    assert calls == [sentences(LONG)]
    assert [len(r) for r in reused] == [1, 6]
    assert np.allclose(reused[0][0], memory) and np.allclose(reused[1][0], memory)


def _rows_of(engine: Engine, memory_id: int) -> int:
    vectors = engine.vectors()
    assert vectors is not None
    return len(vectors.vectors([memory_id], rows=True)[memory_id])


@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_rows_are_stored_searched_backed_up_and_restored(
    settings: Settings, clock: FixedClock, tmp_path: Path, backend: str
) -> None:
    """On the embedded store and the server path (qdrant-client's local mode): the long
    memory's rows are stored, its semantic score is the best row's, the short one keeps one
    row, and a backup restored into an empty store gives back the same rows and scores."""
    if backend == "server":
        settings = replace(settings, qdrant_url=f"local:{tmp_path / 'qdrant'}")
    with Engine(settings, clock=clock) as engine:
        long = engine.add(Draft(LONG, source="diary"))
        short = engine.add(Draft(SHORT, source="note"))
        engine.sync()
        assert (_rows_of(engine, long.id), _rows_of(engine, short.id)) == (6, 1)
        vectors = engine.vectors()
        assert vectors is not None
        assert vectors.vectors([long.id])[long.id].shape == (engine.embedder.dim,)
        query = "a heron in the shallows of the estuary"
        qv = engine.embedder.embed_query(query)
        rows = vectors.vectors([long.id], rows=True)[long.id]
        hit = next(h for h in engine.search(query).hits if h.memory.id == long.id)
        assert hit.semantic_score == pytest.approx(float((rows @ qv).max()), abs=1e-5)
        assert hit.semantic_score > float(rows[0] @ qv)  # the sentence raised it
        before = [(h.memory.id, round(h.score, 5)) for h in engine.search(query).hits]
        made = create_backup(engine, tmp_path / "b")
    wipe(settings)
    if backend == "server":
        import shutil

        shutil.rmtree(tmp_path / "qdrant")
    with Engine(settings, clock=clock) as engine:
        report = restore_backup(engine, made.path)
        assert report.vectors_loaded == 2 and report.reembedded == 0
        assert (_rows_of(engine, long.id), _rows_of(engine, short.id)) == (6, 1)
        assert [(h.memory.id, round(h.score, 5)) for h in engine.search(query).hits] == before


def make_old_shard(path: Path, dim: int, stored: str) -> None:
    """An empty shard as an earlier version made it: one Cosine vector per point (``one``) or
    one MaxSim multivector of rows, indexed as a whole (``rows``)."""
    import qdrant_edge as q

    if stored == ONE:
        params = q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)
    else:
        maxsim = q.MultiVectorConfig(q.MultiVectorComparator.MaxSim)
        params = q.EdgeVectorParams(size=dim, distance=q.Distance.Dot, multivector_config=maxsim)
    q.EdgeShard.create(str(path), q.EdgeConfig(vectors=params)).close()
    (path.parent / f"{path.name}.json").write_text(
        json.dumps({"collection": path.name, "dim": dim})
    )


@pytest.mark.parametrize("stored", [ONE, ROWS])
def test_a_store_in_an_older_format_keeps_it(tmp_path: Path, stored: str) -> None:
    """A shard made by an earlier version opens in its own format: rows written to a store of
    one vector keep their first row, a store of rows keeps them all, and both search as
    before (the best row's score); a store made now has the head+rows format."""
    path = tmp_path / "shard"
    make_old_shard(path, 4, stored)
    store = EdgeVectors(path, 4)
    try:
        assert store.format == stored
        rows = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
        store.upsert([VectorPoint(1, rows, {}), VectorPoint(2, np.array([0.6, 0.8, 0, 0]), {})])
        kept = 1 if stored == ONE else 2
        assert store.vectors([1], rows=True)[1].shape == (kept, 4)
        assert [pid for pid, _ in store.search(np.array([0, 1, 0, 0], dtype=np.float32), 2)] == (
            [2, 1] if stored == ONE else [1, 2]
        )
    finally:
        store.close()
    fresh = EdgeVectors(tmp_path / "new", 4)
    try:
        assert fresh.format == HEAD_ROWS
    finally:
        fresh.close()


@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_head_rows_search_orders_the_heads_candidates_by_their_rows(
    tmp_path: Path, backend: str
) -> None:
    """In the head+rows format the index finds candidates by a memory's own vector and a
    sentence row then decides the order, the score is the best row's, and a filter holds for
    both stages; an id's own vector and all its rows read back as stored."""
    store: Any
    if backend == "embedded":
        store = EdgeVectors(tmp_path / "shard", 4)
    else:
        store = ClientVectors(":memory:", 4)
    try:
        assert store.format == HEAD_ROWS
        if backend == "embedded":  # the head is searched through an int8 copy kept in RAM
            config = json.loads((tmp_path / "shard" / "edge_config.json").read_text())
            head = config["vectors"]["head"]["quantization_config"]["scalar"]
            assert head == {"type": "int8", "always_ram": True}
        e = np.eye(4, dtype=np.float32)
        two_rows = np.stack([e[0], e[1]])  # its own vector e0, a sentence row e1
        store.upsert(
            [
                VectorPoint(1, two_rows, {"source": "a"}),
                VectorPoint(2, unit_vector([0.3, 0.7, 0, 0.648]), {"source": "b"}),
                VectorPoint(3, e[2], {"source": "b"}),
            ]
        )
        query = unit_vector([0.2, 1.0, 0, 0])
        found = store.search(query, 3)
        assert [pid for pid, _ in found] == [1, 2, 3]
        assert found[0][1] == pytest.approx(float((two_rows @ query).max()), abs=1e-5)
        only_b = store.search(query, 3, SearchFilter(sources=("b",)))
        assert [pid for pid, _ in only_b] == [2, 3]
        assert np.allclose(store.vectors([1])[1], e[0])
        assert np.allclose(store.vectors([1], rows=True)[1], two_rows)
        assert [(pid, rows.shape) for pid, rows, _ in store.export(-1, 10)] == [
            (1, (2, 4)),
            (2, (1, 4)),
            (3, (1, 4)),
        ]
    finally:
        store.close()


def unit_vector(values: list[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    return array / np.linalg.norm(array)


@pytest.mark.parametrize("stored", [ONE, ROWS])
def test_reembed_rebuilds_a_store_in_an_older_format_as_head_rows(
    settings: Settings, clock: FixedClock, stored: str
) -> None:
    """`ephemera reembed` with the same model moves a store of an older format (one vector
    per memory, or rows indexed as a whole) to head+rows (it used to answer "nothing to
    re-embed"); once moved, it has nothing to do again."""
    with Engine(settings, clock=clock) as engine:
        path = engine.vectors_path
    path.mkdir(parents=True)
    make_old_shard(path, 384, stored)
    with Engine(settings, clock=clock) as engine:
        long = engine.add(Draft(LONG))
        engine.sync()
        assert _rows_of(engine, long.id) == (1 if stored == ONE else 6)
        report = engine.reembed()
        assert report.switched and any(f"older {stored!r} format" in n for n in report.notes)
        assert engine.vectors().format == HEAD_ROWS  # type: ignore[union-attr]
        assert _rows_of(engine, long.id) == 6
        assert engine.search("heron in the estuary").hits[0].memory.id == long.id
        again = engine.reembed()
        assert not again.switched and any("nothing to re-embed" in n for n in again.notes)


@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_tied_hits_come_back_in_id_order(tmp_path: Path, backend: str) -> None:
    """Points of equal score are returned by id, so the same search gives the same list."""
    store: Any = (
        EdgeVectors(tmp_path / "shard", 4)
        if backend == "embedded"
        else ClientVectors(":memory:", 4)
    )
    try:
        tied = unit_vector([1, 1, 0, 0])
        store.upsert([VectorPoint(pid, tied, {}) for pid in (9, 3, 7, 1, 5)])
        found = [store.search(tied, 3) for _ in range(5)]
        assert all([pid for pid, _ in hits] == [1, 3, 5] for hits in found)
    finally:
        store.close()
