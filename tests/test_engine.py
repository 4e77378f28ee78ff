"""Engine behaviour on SQLite and on the real MariaDB: write path, search, sync, cross-check."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, text

from ephemera_tui.engine import Draft, Engine, NotFoundError
from ephemera_tui.engine.errors import VectorStoreError

from .conftest import FixedClock

DAY = 86400


def seed(engine: Engine, clock: FixedClock) -> dict[str, int]:
    ids = {}
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (
            "hike",
            "Hiked up to the alpine lake with Anna, cold water",
            {"tags": ("outdoor", "trip")},
        ),
        (
            "tax",
            "Filed the tax return paperwork at the office",
            {"source": "todo", "importance": 250},
        ),
        ("cat", "The cat knocked the plant off the windowsill", {"tags": ("home",)}),
        (
            "old",
            "First day at the new job, met the team",
            {"created_at": int(clock.now) - 400 * DAY},
        ),
    ]
    for key, content, extra in rows:
        ids[key] = engine.add(Draft(content, **extra)).id
    return ids


def test_schema_matches_the_seed(engine: Engine) -> None:
    inspector = inspect(engine.store.engine)
    columns = {c["name"] for c in inspector.get_columns("memory_fragments")}
    assert columns == {
        "id",
        "content",
        "created_at",
        "source",
        "importance",
        "confidence",
        "tags",
        "notes",
        "associations",
        "revision",  # ours: counts edits so a stale one is refused (docs/service.md)
    }
    indexes = {i["name"] for i in inspector.get_indexes("memory_fragments")}
    assert {
        "idx_created_at",
        "idx_source",
        "idx_importance",
        "idx_created_source_importance",
    } <= indexes
    if engine.store.is_mysql:
        assert "idx_content" in indexes  # the FULLTEXT index
    with engine.store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version is not None and version.startswith("000")


def test_ids_are_unique_millisecond_stamps_even_in_one_millisecond(
    engine: Engine, clock: FixedClock
) -> None:
    ids = [engine.add(Draft(f"burst {n}")).id for n in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)
    assert ids[0] == int(clock.now * 1000)


def test_backdated_created_at_is_kept(engine: Engine, clock: FixedClock) -> None:
    memory = engine.add(Draft("childhood memory", created_at=946684800))
    assert memory.created_at == 946684800
    assert memory.id >= int(clock.now * 1000)
    assert engine.get(memory.id) == memory


def test_round_trip_of_all_fields(engine: Engine) -> None:
    other = engine.add(Draft("other"))
    memory = engine.add(
        Draft(
            "Ünïcode ✓ and 'quotes' \"double\" [bold]markup[/bold]",
            source="diary",
            importance=0,
            confidence=255,
            tags=("a", "b-c", "日本"),
            notes="line1\nline2",
            associations=(other.id,),
        )
    )
    assert engine.get(memory.id) == memory


def test_hybrid_search_explains_each_hit(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    result = engine.search("alpine lake")
    assert result.mode == "hybrid"
    top = result.hits[0]
    assert top.memory.id == ids["hike"]
    assert top.keyword_rank == 1 and top.semantic_rank == 1
    assert top.keyword_score is not None and top.semantic_score is not None
    assert result.notices == ()


def test_filters_apply_on_both_sides(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    assert [h.memory.id for h in engine.search("the tag:home").hits] == [ids["cat"]]
    assert [h.memory.id for h in engine.search("the source:todo").hits] == [ids["tax"]]
    assert [h.memory.id for h in engine.search("the importance>=200").hits] == [ids["tax"]]
    old = engine.search("team before:2025-06-01").hits
    assert [h.memory.id for h in old] == [ids["old"]]
    recent = {h.memory.id for h in engine.search("the after:last month").hits}
    assert ids["old"] not in recent and ids["cat"] in recent
    phrase = engine.search('"knocked the plant"').hits
    assert [h.memory.id for h in phrase] == [ids["cat"]]


def test_search_without_words_browses_newest_first(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    result = engine.search("tag:trip")
    assert result.mode == "browse"
    assert [h.memory.id for h in result.hits] == [ids["hike"]]


def test_edit_reaches_both_stores(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    memory = engine.get(ids["cat"])
    engine.update(
        memory.id, Draft.from_memory(memory).with_changes(content="The dog chewed my shoe")
    )
    assert engine.search("shoe").hits[0].memory.id == memory.id
    assert all(h.memory.id != memory.id for h in engine.search("windowsill").hits if h.keyword_rank)
    assert engine.check().problems == 0
    payload = engine.vectors().payloads([memory.id])[memory.id]  # type: ignore[union-attr]
    assert payload["hash"] == engine.get(memory.id).content_hash


def test_delete_reaches_both_stores_and_removes_links(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    engine.link(ids["hike"], ids["cat"])
    engine.delete(ids["cat"])
    with pytest.raises(NotFoundError):
        engine.get(ids["cat"])
    assert engine.get(ids["hike"]).associations == ()
    assert engine.vectors().payloads([ids["cat"]]) == {}  # type: ignore[union-attr]
    assert engine.check().problems == 0


def test_links_are_seen_both_ways(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    engine.link(ids["hike"], ids["tax"])
    outgoing, incoming = engine.neighbours(ids["tax"])
    assert outgoing == [] and [m.id for m in incoming] == [ids["hike"]]
    engine.unlink(ids["tax"], ids["hike"])
    assert engine.get(ids["hike"]).associations == ()


def test_failed_vector_write_stays_queued_and_catches_up(
    engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = engine.vectors()
    assert vectors is not None

    def broken(points: object) -> None:
        raise VectorStoreError("vector store exploded")

    monkeypatch.setattr(vectors, "upsert", broken)
    memory = engine.add(Draft("the kettle is broken again"))
    assert engine.pending() == 1
    result = engine.search("kettle")
    assert result.hits[0].memory.id == memory.id  # keyword still finds it
    assert any("not yet searchable by meaning" in n for n in result.notices)
    monkeypatch.undo()
    clock.advance(5)  # past the retry back-off
    report = engine.sync()
    assert report.upserted == 1 and report.remaining == 0
    assert engine.search("kettle").hits[0].semantic_rank == 1


def test_check_finds_and_repairs_missing_orphaned_stale(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    vectors = engine.vectors()
    assert vectors is not None
    vectors.delete([ids["hike"]])  # missing
    from ephemera_tui.engine.vectors import VectorPoint

    stale_vec = engine.embedder.embed(["something else"])[0]
    vectors.upsert([VectorPoint(ids["tax"], stale_vec, {"hash": "0000", "model": "fake-hash-384"})])
    vectors.upsert([VectorPoint(424242, stale_vec, {"hash": "x", "model": "fake-hash-384"})])
    report = engine.check()
    assert report.missing == (ids["hike"],)
    assert report.stale == (ids["tax"],)
    assert report.orphaned == (424242,)
    repaired = engine.check(repair=True)
    assert repaired.repaired == 3
    assert engine.check().problems == 0


def test_import_is_idempotent(engine: Engine) -> None:
    rows = [(Draft(f"imported {n}", created_at=1_600_000_000 + n), None) for n in range(30)]
    first = engine.import_drafts(iter(rows), batch_size=7)
    assert first.imported == 30
    again = engine.import_drafts(iter(rows), batch_size=7)
    assert again.imported == 0 and again.skipped == 30
    assert engine.count() == 30 and engine.pending() == 0
    exported = engine.get(first.ids[0])
    changed = Draft.from_memory(exported).with_changes(content="changed text")
    update = engine.import_drafts(iter([(changed, exported.id)]))
    assert update.updated == 1 and engine.get(exported.id).content == "changed text"


def test_tag_filter_uses_the_tag_table(engine: Engine) -> None:
    engine.add(Draft("x one", tags=("alpha", "beta")))
    engine.add(Draft("x two", tags=("beta",)))
    assert engine.count() == 2
    assert len(engine.search("tag:beta").hits) == 2
    assert len(engine.search("tag:alpha tag:beta").hits) == 1
    assert dict(engine.tags()) == {"beta": 2, "alpha": 1}


def test_tags_that_differ_by_an_accent_are_two_tags_on_every_backend(engine: Engine) -> None:
    """MySQL's default collation equated ``cafe`` and ``café``: the memory could not be
    written (its two tag rows collided) and ``tag:café`` found ``cafe``."""
    both = engine.add(Draft("x both", tags=("cafe", "café")))
    plain = engine.add(Draft("x plain", tags=("Cafe",)))
    accented = engine.add(Draft("x accented", tags=("CAFÉ",)))
    untagged = engine.add(Draft("x untagged"))
    assert engine.get(both.id).tags == ("cafe", "café")

    def found(query: str) -> set[int]:
        browse = {m.id for m in engine.browse(engine.parse(query).filter)}
        searched = {h.memory.id for h in engine.search(f"{query} x").hits}
        assert browse == searched, query
        assert engine.count(engine.parse(query).filter) == len(browse), query
        return browse

    assert found("tag:cafe") == {both.id, plain.id}
    assert found("tag:café") == {both.id, accented.id}
    assert found("tag:CAFÉ") == {both.id, accented.id}
    assert found("-tag:café") == {plain.id, untagged.id}
    assert found("-tag:café -tag:cafe") == {untagged.id}
    assert found("-tag:cafe tag:café") == {accented.id}
    assert dict(engine.tags()) == {"cafe": 1, "café": 1, "Cafe": 1, "CAFÉ": 1}


def test_tags_are_deduplicated_in_the_form_their_filters_compare(engine: Engine) -> None:
    """``Straße`` and ``STRASSE`` are one tag to casefold() but two to every tag filter
    (fold_tag lower-cases): both are kept, so ``tag:strasse`` finds the memory tagged so."""
    both = engine.add(Draft("y both", tags=("Straße", "STRASSE", "straße")))
    assert engine.get(both.id).tags == ("Straße", "STRASSE")
    found = {m.id for m in engine.browse(engine.parse("tag:strasse").filter)}
    assert found == {both.id}
    assert {m.id for m in engine.browse(engine.parse("tag:STRASSE").filter)} == {both.id}
    assert engine.count(engine.parse("-tag:straße").filter) == 0


def test_activity_and_paging(engine: Engine, clock: FixedClock) -> None:
    for n in range(10):
        engine.add(Draft(f"day {n}", created_at=int(clock.now) - n * DAY))
    page = engine.browse(limit=3, offset=3)
    assert [m.content for m in page] == ["day 3", "day 4", "day 5"]
    assert sum(count for _, count in engine.activity("day")) == 10
    assert sum(count for _, count in engine.activity("month")) == 10
    assert engine.position_of(int(clock.now) - 4 * DAY) == 4


def test_similar_excludes_itself(engine: Engine, clock: FixedClock) -> None:
    ids = seed(engine, clock)
    similar = engine.similar(ids["hike"], limit=2)
    assert similar and all(h.memory.id != ids["hike"] for h in similar)


def test_mysql_short_words_fall_back_to_like(engine: Engine) -> None:
    memory = engine.add(Draft("go to the ai meetup"))
    hits = engine.search("ai").hits
    assert hits and hits[0].memory.id == memory.id


def test_qdrant_client_backend_runs_the_same_engine(settings: Any, clock: FixedClock) -> None:
    from dataclasses import replace

    server_like = replace(settings, qdrant_url=":memory:")
    with Engine(server_like, clock=clock) as engine:
        ids = seed(engine, clock)
        assert engine.vectors().kind == "server"  # type: ignore[union-attr]
        assert engine.search("alpine lake tag:trip").hits[0].memory.id == ids["hike"]
        assert engine.check().problems == 0
        engine.delete(ids["hike"])
        assert engine.check().problems == 0


def test_unreachable_qdrant_server_keeps_writes_and_searches_by_keyword(
    settings: Any, clock: FixedClock
) -> None:
    from dataclasses import replace

    refused = replace(settings, qdrant_url="http://127.0.0.1:9")
    with Engine(refused, clock=clock) as engine:
        memory = engine.add(Draft("the broken kettle again"))
        result = engine.search("kettle")
        assert result.mode == "keyword"
        assert result.hits[0].memory.id == memory.id
        assert any("keyword results only" in n and "127.0.0.1:9" in n for n in result.notices)
        assert engine.pending() == 1
