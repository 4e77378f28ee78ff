"""Re-embedding into a new collection while the old one serves, then switching; resuming."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.embedder import CachedEmbedder, HashEmbedder
from ephemera_tui.engine.vectors import COLLECTION, collection_for
from ephemera_tui.engine.vectors.reembed import LAST_KEY, RETIRED_KEY, TARGET_KEY, drop_retired

WORDS = ["harbour", "violin", "glacier", "lantern", "orchard", "comet", "saffron", "quartz"]


def other_model(dim: int = 64) -> CachedEmbedder:
    return CachedEmbedder(HashEmbedder(dim=dim, name="other-model"))


def fill(engine: Engine, count: int = 40) -> list[int]:
    drafts = [
        (Draft(f"note {n} about the {WORDS[n % len(WORDS)]} and more", tags=("t",)), None)
        for n in range(count)
    ]
    return engine.import_drafts(drafts).ids


class Interrupt(Exception):
    pass


def test_switch_to_another_dimension_with_old_serving_and_resume(
    engine: Engine, settings: Settings
) -> None:
    ids = fill(engine)
    assert engine.search("violin").mode == "hybrid"
    target = collection_for("other-model")
    new = Engine(settings, embedder=other_model())
    try:
        # the new engine refuses the old vectors and says how to switch
        assert any("reembed" in n for n in new.search("violin").notices)

        # step 1: two batches, then stop; the old collection still serves the old engine
        first = new.reembed(batch_size=10, max_batches=2)
        assert not first.switched and first.embedded == 20 and first.batches == 2
        assert new.store.get_meta(LAST_KEY) == str(ids[19])
        assert json.loads(new.store.get_meta(TARGET_KEY) or "{}")["collection"] == target
        served = engine.search("violin")
        assert served.mode == "hybrid" and not served.notices
        assert engine.vector_collection() == COLLECTION

        # edits meanwhile go to the old (active) collection and are caught up at the switch
        edited = engine.update(ids[0], Draft("now about a lighthouse", tags=("edited",)))
        added = engine.add(Draft("a brand new lighthouse keeper"))
        engine.delete(ids[1])
        assert engine.pending() == 0

        # step 2: interrupted by a failing progress callback after one more batch
        calls: list[int] = []

        def boom(n: int) -> None:
            calls.append(n)
            raise Interrupt

        with pytest.raises(Interrupt):
            new.reembed(boom, batch_size=10)
        assert calls == [10]
        assert new.store.get_meta(LAST_KEY) == str(ids[29])
        assert engine.search("glacier").mode == "hybrid"

        # step 3: resume; finished batches are not redone
        done = new.reembed(batch_size=10)
        assert done.resumed_from == ids[29]
        assert done.embedded == 11  # ids[30:40] and the added memory
        assert done.switched
        assert done.caught_up >= 1  # the edited memory
        assert done.removed >= 1  # the deleted one
        assert new.vector_collection() == target
        assert new.store.get_meta("vector_model") == "other-model"
        assert new.store.get_meta(TARGET_KEY) is None
        # the old engine still holds the old shard: it is retired, not dropped
        if not settings.qdrant_url:
            assert not done.dropped_old
            assert json.loads(new.store.get_meta(RETIRED_KEY) or "[]") == [COLLECTION]

        # the old engine notices the switch on its next drain and stops writing
        late = engine.add(Draft("written by the old engine after the switch about comets"))
        assert engine.vectors() is None and "reembed" in engine.vector_status
        engine.release_vectors()

        result = new.search("lighthouse")
        assert result.mode == "hybrid"
        top = {h.memory.id for h in result.hits[:3]}
        assert {edited.id, added.id} <= top
        assert new.vectors().dim == 64  # type: ignore[union-attr]
        new.sync()
        assert late.id in {h.memory.id for h in new.search("comets").hits}
        report = new.check()
        assert report.problems == 0 and report.pending == 0
        payload = new.vectors().payloads([edited.id])[edited.id]  # type: ignore[union-attr]
        assert payload["tags"] == ["edited"] and payload["model"] == "other-model"
        assert new.vectors().payloads([ids[1]]) == {}  # type: ignore[union-attr]
    finally:
        new.close()
    engine.close()
    if not settings.qdrant_url:
        with Engine(settings, embedder=other_model()) as later:
            assert drop_retired(later) == []
            assert not settings.vectors_path.exists()
            assert (settings.vectors_path.parent / target).exists()
            assert later.check().problems == 0


def test_same_dimension_cli_flow_drops_old_shard(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        fill(engine, 12)
    with Engine(settings, embedder=other_model(384)) as engine:
        report = engine.reembed(batch_size=5)
        assert report.switched and report.dropped_old and report.embedded == 12
        assert not settings.vectors_path.exists()
        assert engine.search("orchard").mode == "hybrid"
        assert engine.check().problems == 0
        again = engine.reembed()
        assert not again.switched and again.notes


def test_abandoned_reembed_is_cleaned_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        fill(engine, 12)
        engine.reembed(embedder=other_model(), batch_size=5, max_batches=1)
        target = settings.vectors_path.parent / collection_for("other-model")
        assert target.exists()
        # the configured (serving) model is still the old one: giving up drops the target
        report = engine.reembed()
        assert not report.switched and not target.exists()
        assert engine.store.get_meta(TARGET_KEY) is None
        assert engine.search("comet").mode == "hybrid"


@pytest.mark.parametrize("where", ["memory", "local"])
def test_qdrant_client_path_switches_and_points_the_alias(
    tmp_path: Path, db_url: str, where: str
) -> None:
    url = ":memory:" if where == "memory" else f"local:{tmp_path / 'qdrant'}"
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        embedding_model="fake-hash-384",
        qdrant_url=url,
    )
    engine = Engine(settings)
    ids = fill(engine, 25)
    other = other_model()
    first = engine.reembed(embedder=other, batch_size=10, max_batches=1)
    assert not first.switched
    assert engine.search("violin").mode == "hybrid"  # the old collection serves
    engine.update(ids[3], Draft("a lighthouse at dusk"))
    done = engine.reembed(embedder=other, batch_size=10)
    assert done.switched and done.dropped_old and done.embedded == 15
    target = collection_for("other-model")
    assert engine.vector_collection() == target
    if where == "memory":
        # the serving engine still has the old model: it refuses, and a new-model engine on the
        # same in-memory client is not possible, so look at the client directly
        assert engine.vectors() is None
        engine.close()
        return
    engine.close()
    with Engine(replace(settings), embedder=other) as new:
        vectors = new.vectors()
        assert vectors is not None and vectors.dim == 64
        client = vectors._client  # type: ignore[attr-defined]
        names = {c.name for c in client.get_collections().collections}
        assert names == {target}
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
        assert aliases == {COLLECTION: target}
        assert ids[3] in {h.memory.id for h in new.search("lighthouse").hits[:3]}
        assert new.check().problems == 0


def test_backup_and_restore_take_the_active_collection(tmp_path: Path) -> None:
    from ephemera_tui.engine.backup.sets import create_backup, restore_backup

    settings = Settings(data_dir=tmp_path / "a", embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        fill(engine, 15)
    other = other_model()
    with Engine(settings, embedder=other) as engine:
        assert engine.reembed(batch_size=4).switched
        made = create_backup(engine, tmp_path / "backups")
        assert made.manifest["collection"] == collection_for("other-model")
        assert made.manifest["vectors"]["points"] == 15
        assert engine.search("quartz").mode == "hybrid"  # reopened after the snapshot
    fresh = Settings(data_dir=tmp_path / "b", embedding_model="fake-hash-384")
    with Engine(fresh, embedder=other) as engine:
        report = restore_backup(engine, made.path)
        assert report.vectors_loaded == 15 and report.reembedded == 0
        assert engine.check().problems == 0
        assert engine.search("quartz").mode == "hybrid"
