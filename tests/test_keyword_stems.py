"""SQLite keyword search counts each word's matches by the index's own stems, and stops
counting at the postings budget unless every word is past it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.filters import SearchFilter
from ephemera_tui.engine.store import keyword


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    keyword._DF_CACHE.clear()
    with Engine(Settings(data_dir=tmp_path / "data", embedding_model="fake-hash-384")) as eng:
        for i in range(12):
            eng.add(Draft(f"a feeling of calm, day {i}"))
        for i in range(8):
            eng.add(Draft(f"coffee with the team, day {i}"))
        eng.add(Draft("feelin' fine"))
        eng.add(Draft("a zeppelin overhead"))
        yield eng


def counts(engine: Engine, words: list[str], budget: int) -> dict[str, int]:
    with engine.store.read() as conn:
        return keyword._doc_freqs(conn, words, budget, str(engine.store.engine.url))


def test_a_word_counts_every_memory_its_stem_matches(engine: Engine) -> None:
    assert counts(engine, ["feels", "zeppelin", "feelin"], 100) == {
        "feels": 12,
        "zeppelin": 1,
        "feelin": 1,
    }


def test_counting_stops_past_the_budget(engine: Engine) -> None:
    assert counts(engine, ["feeling", "coffee", "zeppelin"], 5) == {
        "feeling": 6,
        "coffee": 6,
        "zeppelin": 1,
    }


def test_when_every_word_is_past_the_budget_the_rarest_gives_its_newest(engine: Engine) -> None:
    assert counts(engine, ["feeling", "coffee"], 3) == {"feeling": 12, "coffee": 8}
    found = engine.store.keyword_search(["feeling", "coffee"], SearchFilter(), 5, budget=3)
    contents = [m.content for m in engine.store.get_many([pid for pid, _ in found]).values()]
    assert sorted(contents) == sorted(f"coffee with the team, day {i}" for i in range(3, 8))


def test_counts_are_reused_and_a_larger_budget_counts_again(engine: Engine) -> None:
    assert counts(engine, ["feeling", "zeppelin"], 5) == {"feeling": 6, "zeppelin": 1}
    with engine.store.read() as conn:
        conn.exec_driver_sql("DELETE FROM memory_fts")  # the cache answers, not the index
        db = str(engine.store.engine.url)
        assert keyword._doc_freqs(conn, ["feeling", "zeppelin"], 5, db)["feeling"] == 6
        assert keyword._doc_freqs(conn, ["feeling", "zeppelin"], 50, db)["feeling"] == 0


def test_a_question_of_many_words_is_counted_in_parts(engine: Engine) -> None:
    words = [f"word{i}" for i in range(700)] + ["zeppelin"]
    assert counts(engine, words, 5)["zeppelin"] == 1
    found = engine.store.keyword_search(words, SearchFilter(), 5, budget=5)
    assert [m.content for m in engine.store.get_many([pid for pid, _ in found]).values()] == [
        "a zeppelin overhead"
    ]
