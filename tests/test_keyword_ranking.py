"""The keyword side ranks alike on SQLite (FTS5 bm25, porter stems) and MariaDB (FULLTEXT
recall, BM25 re-scoring over light stems): same matches, same order on clear cases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.filters import SearchFilter

FILLER = " ".join(f"filler{i}" for i in range(60))


def keyword(engine: Engine, *words: str) -> list[str]:
    ids = engine.store.keyword_search(list(words), SearchFilter(), 10)
    found = engine.store.get_many([pid for pid, _ in ids])
    return [found[pid].content for pid, _ in ids]


def test_inflected_forms_match_on_every_backend(engine: Engine) -> None:
    engine.add(Draft("the reduction of infections after the vaccine"))
    engine.add(Draft("nothing to see here"))
    assert keyword(engine, "reductions") == ["the reduction of infections after the vaccine"]
    assert keyword(engine, "infected") == ["the reduction of infections after the vaccine"]


def test_a_short_memory_outranks_a_long_one_with_the_word_once(engine: Engine) -> None:
    engine.add(Draft(f"otters {FILLER}"))
    engine.add(Draft("otters at the harbour"))
    engine.add(Draft("seals at the harbour"))
    assert keyword(engine, "otters") == ["otters at the harbour", f"otters {FILLER}"]


def test_a_rare_word_outweighs_a_common_one(engine: Engine) -> None:
    for i in range(12):
        engine.add(Draft(f"coffee with the team, day {i}"))
    engine.add(Draft("coffee and a zeppelin overhead"))
    engine.add(Draft("a zeppelin over the bay"))
    got = keyword(engine, "coffee", "zeppelin")
    assert got[0] == "coffee and a zeppelin overhead"  # both words
    assert got[1] == "a zeppelin over the bay"  # the rare one alone beats the common one
    assert len(got) == 10  # the commonest matches fill the rest


def test_short_words_join_the_ranking(engine: Engine) -> None:
    engine.add(Draft("an ai talk at the meetup"))
    engine.add(Draft("the meetup was long"))
    assert keyword(engine, "ai", "meetup")[0] == "an ai talk at the meetup"


def test_a_word_over_the_budget_gives_its_newest_matches(engine: Engine) -> None:
    ids = [engine.add(Draft(f"coffee with the team, day {i}")).id for i in range(30)]
    engine.add(Draft("tea in the garden"))
    found = engine.store.keyword_search(["coffee"], SearchFilter(), 5, budget=3)
    assert len(found) == 5
    assert {pid for pid, _ in found} <= set(ids[-10:])  # among the newest, never the oldest


def test_the_budget_counts_a_word_by_its_stem(engine: Engine) -> None:
    """``feeling`` matches every memory with ``feel`` (its stem), not just the one with
    ``feelin'``: counted rightly, it is the word the budget leaves out."""
    for i in range(12):
        engine.add(Draft(f"a feeling of calm, day {i}"))
    engine.add(Draft("feelin' fine"))
    engine.add(Draft("a zeppelin overhead"))
    engine.add(Draft("the zeppelin and the feeling"))
    found = engine.store.keyword_search(["feeling", "zeppelin"], SearchFilter(), 10, budget=5)
    contents = {m.content for m in engine.store.get_many([pid for pid, _ in found]).values()}
    assert contents == {"a zeppelin overhead", "the zeppelin and the feeling"}


def test_mysql_statistics_are_counted_again_on_a_thread(
    mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old statistics serve searches while a thread counts them again (0.3-0.4 s at a
    million rows); a missing newest row makes the search count them at once."""
    from ephemera_tui.engine.store import mysql_keyword as mk

    settings = Settings(
        data_dir=tmp_path / "data", database_url=mysql_url, embedding_model="fake-hash-384"
    )
    with Engine(settings) as engine:
        db = str(engine.store.engine.url)
        for n in range(3):
            engine.add(Draft(f"the lake in the morning, day {n}"))
        assert keyword(engine, "lake")
        assert mk._STATS.get_aged((db, "\x00corpus"))[1].total == 3  # type: ignore[index]

        release = threading.Event()
        counted = mk._count_corpus

        def slow_on_its_thread(conn: object, name: str) -> object:
            if threading.current_thread().name == "ephemera-keyword-stats":
                assert release.wait(10)
            return counted(conn, name)  # type: ignore[arg-type]

        monkeypatch.setattr(mk, "_count_corpus", slow_on_its_thread)
        monkeypatch.setattr(mk, "STATS_TTL_S", 0.0)  # every statistic is now old
        newest = engine.add(Draft("the lake at night"))
        assert len(keyword(engine, "lake")) == 4  # answered while the thread waits
        assert mk._STATS.get_aged((db, "\x00corpus"))[1].total == 3  # type: ignore[index]
        release.set()
        deadline = time.monotonic() + 10
        while mk._STATS.get_aged((db, "\x00corpus"))[1].total != 4:  # type: ignore[index]
            assert time.monotonic() < deadline, "the statistics were never counted again"
            time.sleep(0.02)

        engine.delete(newest.id)  # the newest row counted is gone: count again at once
        assert len(keyword(engine, "lake")) == 3
        assert mk._STATS.get_aged((db, "\x00corpus"))[1].total == 3  # type: ignore[index]
