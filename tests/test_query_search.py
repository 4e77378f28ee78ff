"""Negation and case-insensitive tag filters through the real stores: SQL on SQLite and
MariaDB, payload filters on qdrant-edge and qdrant-client (local mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ephemera_tui.engine import Draft, Engine
from ephemera_tui.engine.filters import SearchFilter
from ephemera_tui.engine.vectors.base import VectorPoint
from ephemera_tui.engine.vectors.edge import EdgeVectors
from ephemera_tui.engine.vectors.server import ClientVectors

TAGGED = {
    "walk with Caroline by the river": ("Caroline",),
    "caroline called about the river house": ("caroline",),
    "CAROLINE sent river photos": ("CAROLINE",),
    "lunch at McDonald by the river": ("McDonald",),
    "Ärger mit dem Vermieter am river": ("Ärger",),
    "river notes without tags": (),
}


@pytest.fixture
def journal(engine: Engine) -> dict[str, int]:
    ids = {}
    for content, tags in TAGGED.items():
        source = "diary" if "photos" in content else "note"
        ids[content] = engine.add(Draft(content, tags=tags, source=source)).id
    engine.sync()
    return ids


def contents(result: Any) -> set[str]:
    return {hit.memory.content for hit in result.hits}


@pytest.mark.parametrize("typed", ["tag:caroline", "tag:Caroline", "TAG:CAROLINE"])
def test_tag_filters_ignore_case_in_sql(engine: Engine, journal: dict, typed: str) -> None:
    listed = engine.search(typed, limit=50)
    assert listed.mode == "browse"
    assert contents(listed) == {
        c for c, t in TAGGED.items() if "caroline" in [x.lower() for x in t]
    }
    assert engine.count(engine.parse(typed).filter) == 3


def test_tags_keep_their_written_case(engine: Engine, journal: dict) -> None:
    hit = engine.search("tag:caroline photos").hits[0]
    assert hit.memory.tags == ("CAROLINE",)


@pytest.mark.parametrize(
    ("typed", "content"),
    [
        ("tag:mcdonald", "lunch at McDonald by the river"),
        ("tag:ärger", "Ärger mit dem Vermieter am river"),
    ],
)
def test_mixed_and_non_ascii_case_in_sql(
    engine: Engine, journal: dict, typed: str, content: str
) -> None:
    assert contents(engine.search(typed)) == {content}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("tag:CaRoLiNe", 3),
        ("tag:MCDONALD", 1),
        ("tag:ÄRGER", 1),
        ("-tag:caroline", 3),
        ("tag:caroline -tag:mcdonald", 3),
        ("tag:caroline source:diary", 1),
    ],
)
def test_counts_of_tag_filters_ignore_case(
    engine: Engine, journal: dict, typed: str, expected: int
) -> None:
    """Counts read the tags as a set (by index), pages probe each row's tags: both agree."""
    flt = engine.parse(typed).filter
    assert engine.count(flt) == expected
    assert len(engine.browse(flt, limit=50)) == expected
    assert sum(n for _, n in engine.activity("day", flt)) == expected


def test_a_tag_count_is_found_by_index_on_sqlite(tmp_path: Path) -> None:
    """A count of a tag filter must not probe the tags of every memory (40 ms at 100k).
    (MariaDB compares tags under a case-insensitive collation and uses the plain index.)"""
    from sqlalchemy import func, select

    from ephemera_tui.engine import Settings
    from ephemera_tui.engine.store.tables import FRAGMENTS

    engine = Engine(Settings(data_dir=tmp_path / "data", embedding_model="fake-hash-384"))
    try:
        engine.add(Draft("walk with Caroline", tags=("Caroline",)))
        flt = engine.parse("tag:caroline").filter
        conds = engine.store.filter_conditions(flt, whole_set=True)
        query = select(func.count()).select_from(FRAGMENTS).where(*conds)
        sql = str(query.compile(engine.store.engine, compile_kwargs={"literal_binds": True}))
        with engine.store.read() as conn:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            plan = " | ".join(str(r[-1]) for r in rows)
        assert "idx_tag_folded_memory" in plan, plan
        assert "SCAN memory_fragments" not in plan, plan
        assert engine.count(flt) == 1
    finally:
        engine.close()


def test_tag_filter_on_the_semantic_side(engine: Engine, journal: dict) -> None:
    result = engine.search("tag:caroline river", limit=50)
    assert result.mode == "hybrid"
    caroline = {c for c, t in TAGGED.items() if t and t[0].lower() == "caroline"}
    assert contents(result) == caroline
    assert all(hit.semantic_rank is not None for hit in result.hits)


def test_negated_words_leave_memories_out_on_both_sides(engine: Engine, journal: dict) -> None:
    result = engine.search("river -photos -called", limit=50)
    assert result.mode == "hybrid"
    assert contents(result) == set(TAGGED) - {
        "CAROLINE sent river photos",
        "caroline called about the river house",
    }
    assert any(hit.semantic_rank is not None for hit in result.hits)
    assert result.notices == ()


def test_negated_word_matches_words_not_substrings(engine: Engine, journal: dict) -> None:
    # "-rive" must not drop memories holding "river"
    assert contents(engine.search("river -rive", limit=50)) == set(TAGGED)
    assert contents(engine.search("river -RIVER", limit=50)) == set()


def test_negation_alone_browses_the_rest(engine: Engine, journal: dict) -> None:
    result = engine.search("-river -tag:caroline", limit=50)
    assert result.mode == "browse"
    assert contents(result) == set()
    result = engine.search('-tag:Caroline -source:diary -"McDonald"', limit=50)
    assert contents(result) == {
        "Ärger mit dem Vermieter am river",
        "river notes without tags",
    }


def test_negated_tag_and_source_on_the_semantic_side(engine: Engine, journal: dict) -> None:
    result = engine.search("river -tag:CAROLINE -source:diary", limit=50)
    assert result.mode == "hybrid"
    assert contents(result) == {
        "lunch at McDonald by the river",
        "Ärger mit dem Vermieter am river",
        "river notes without tags",
    }


def test_a_bad_filter_is_a_notice_and_the_rest_runs(engine: Engine, journal: dict) -> None:
    result = engine.search("photos importance>=300")
    assert result.hits[0].memory.content == "CAROLINE sent river photos"
    assert result.hits[0].keyword_rank == 1
    assert result.notices[0].startswith("left out 'importance>=300'")


# ---------------------------------------------------------------- payload filters, directly

DIM = 8


def _vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


POINTS = [
    # (id, tags as written, whether the payload has tags_lc, source)
    (1, ["Caroline"], True, "note"),
    (2, ["caroline"], False, "note"),  # written before payloads carried tags_lc
    (3, ["CAROLINE", "trip"], False, "diary"),
    (4, ["McDonald"], True, "note"),
    (5, ["McDonald"], False, "note"),  # unusual case, old payload: out of the payload's reach
    (6, [], True, "note"),
]


@pytest.fixture(params=["edge", "client"])
def payload_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store: Any
    if request.param == "edge":
        store = EdgeVectors(tmp_path / "shard", DIM)
    else:
        store = ClientVectors(":memory:", DIM)
    points = []
    for pid, tags, folded, source in POINTS:
        payload: dict[str, Any] = {"created_at": 0, "source": source, "tags": tags}
        if folded:
            payload["tags_lc"] = [t.lower() for t in tags]
        points.append(VectorPoint(pid, _vector(pid), payload))
    store.upsert(points)
    yield store
    store.close()


def found(store: Any, flt: SearchFilter) -> set[int]:
    return {pid for pid, _ in store.search(_vector(0), 10, flt)}


def test_payload_tag_filter_is_folded(payload_store: Any) -> None:
    assert found(payload_store, SearchFilter(tags=("CAROLINE",))) == {1, 2, 3}
    assert found(payload_store, SearchFilter(tags=("mcdonald",))) == {4}
    assert found(payload_store, SearchFilter(tags=("caroline", "Trip"))) == {3}


def test_payload_exclusions(payload_store: Any) -> None:
    assert found(payload_store, SearchFilter(exclude_tags=("Caroline",))) == {4, 5, 6}
    assert found(payload_store, SearchFilter(exclude_sources=("diary",))) == {1, 2, 4, 5, 6}
    both = SearchFilter(exclude_tags=("mcdonald",), exclude_sources=("diary",))
    assert found(payload_store, both) == {1, 2, 5, 6}  # 5 is left to the SQL re-check
    assert both.needs_sql_check


@pytest.mark.parametrize(
    "typed", ["-tag:work", "-tag:work -tag:home", "-tag:work importance>=100", "tag:home"]
)
def test_day_counts_and_positions_under_tag_filters_match_the_listed_memories(
    engine: Engine, typed: str
) -> None:
    """The timeline's day counts and jump-to-date position subtract the excluded tags'
    memories from the rest; both must equal what a brute-force walk of the list gives."""
    day = 86_400
    start = 1_700_000_000 - 1_700_000_000 % day + 12 * 3600
    tag_sets = [("work",), ("home",), ("work", "home"), (), ("Work",), ("errand",)]
    for n in range(36):
        engine.add(
            Draft(
                f"memory {n}",
                tags=tag_sets[n % len(tag_sets)],
                importance=(n * 37) % 256,
                created_at=start + (n % 5) * day + n * 60,
            )
        )
    flt = engine.parse(typed).filter
    listed = engine.browse(flt, limit=100)
    assert 0 < len(listed) < 36
    days: dict[int, int] = {}
    for memory in listed:
        key = memory.created_at - memory.created_at % day  # UTC days
        days[key] = days.get(key, 0) + 1
    assert engine.store.activity_days(0, flt) == sorted(days.items())
    for moment in (start - day, start + day, start + 3 * day + 600, start + 9 * day):
        expected = sum(1 for m in listed if m.created_at > moment)
        assert engine.position_of(moment, flt) == expected
