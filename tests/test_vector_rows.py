"""A memory of several sentences is stored as rows (vectors/rows.py), on every vector backend,
and keeps them through a background index build, a backup and a restore."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup.sets import create_backup, restore_backup
from ephemera_tui.engine.vectors import VectorPoint
from ephemera_tui.engine.vectors.edge import EdgeVectors
from ephemera_tui.engine.vectors.rows import (
    MAX_SENTENCES,
    SENTENCE_SHARE,
    compose,
    embed_rows,
    sentences,
    with_sentences,
)
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


def test_a_store_made_before_rows_keeps_one_vector_per_memory(tmp_path: Path) -> None:
    """A shard created with one Cosine vector per point (every store before rows) opens as
    such: rows written to it store their first row, and it searches as before."""
    import qdrant_edge as q

    path = tmp_path / "shard"
    old = q.EdgeShard.create(
        str(path), q.EdgeConfig(vectors=q.EdgeVectorParams(size=4, distance=q.Distance.Cosine))
    )
    old.close()
    (tmp_path / "shard.json").write_text(json.dumps({"collection": "shard", "dim": 4}))
    store = EdgeVectors(path, 4)
    try:
        assert store.rows is False
        rows = np.array([[1, 0, 0, 0], [0.7, 0.3, 0, 0]], dtype=np.float32)
        store.upsert(
            [VectorPoint(1, rows, {}), VectorPoint(2, rows[1] / np.linalg.norm(rows[1]), {})]
        )
        assert store.vectors([1], rows=True)[1].shape == (1, 4)
        assert store.search(np.array([1, 0, 0, 0], dtype=np.float32), 2)[0][0] == 1
    finally:
        store.close()
    fresh = EdgeVectors(tmp_path / "new", 4)
    try:
        assert fresh.rows is True  # a store made now holds rows
    finally:
        fresh.close()


def test_reembed_rebuilds_a_store_made_before_rows_with_rows(
    settings: Settings, clock: FixedClock
) -> None:
    """`ephemera reembed` with the same model upgrades a store of one vector per memory (it
    used to answer "nothing to re-embed"); once upgraded, it has nothing to do again."""
    import qdrant_edge as q

    with Engine(settings, clock=clock) as engine:
        path = engine.vectors_path
    path.mkdir(parents=True)
    dim = 384
    old = q.EdgeShard.create(
        str(path), q.EdgeConfig(vectors=q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine))
    )
    old.close()
    (path.parent / f"{path.name}.json").write_text(
        json.dumps({"collection": path.name, "dim": dim})
    )
    with Engine(settings, clock=clock) as engine:
        long = engine.add(Draft(LONG))
        engine.sync()
        assert _rows_of(engine, long.id) == 1
        report = engine.reembed()
        assert report.switched and any("one vector per memory" in n for n in report.notes)
        assert _rows_of(engine, long.id) == 6
        assert engine.search("heron in the estuary").hits[0].memory.id == long.id
        again = engine.reembed()
        assert not again.switched and any("nothing to re-embed" in n for n in again.notes)
