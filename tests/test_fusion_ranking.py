"""BM25 re-scoring of keyword candidates (engine.ranking): the scoring MySQL's FULLTEXT lacks."""

from __future__ import annotations

from ephemera_tui.engine.ranking import bm25_rescore, document_frequencies, stem_word, stems


def test_porter_stems_join_word_forms() -> None:
    assert {stem_word(w) for w in ("painting", "painted", "paints", "paint")} == {"paint"}
    assert {stem_word(w) for w in ("infected", "infections", "infection")} == {"infect"}
    assert stem_word("cells") == "cell" and stem_word("go") == "go"
    assert stems("Melanie PAINTED sunsets") == ["melani", "paint", "sunset"]


def _score(terms: list[str], docs: dict[int, str]) -> list[tuple[int, float]]:
    freq, count, avg = document_frequencies(docs.values())
    return bm25_rescore(terms, list(docs.items()), freq, count, avg)


def test_a_short_match_beats_a_long_one_with_the_same_count() -> None:
    filler = " ".join(f"word{i}" for i in range(60))
    ranked = _score(["lake"], {1: f"lake {filler}", 2: "the alpine lake", 3: "nothing here"})
    assert [pid for pid, _ in ranked] == [2, 1, 3]
    assert ranked[-1][1] == 0.0


def test_repeats_saturate_and_rare_words_weigh_more() -> None:
    docs = {
        1: "tea tea tea tea tea tea tea tea",
        2: "tea with quince",
        **{i: f"tea time number {i}" for i in range(3, 12)},
    }
    ranked = _score(["tea", "quince"], docs)
    assert ranked[0][0] == 2  # one rare word beats eight common ones
    assert ranked[1][0] == 1


def test_word_forms_match_and_ties_keep_the_input_order() -> None:
    ranked = _score(["painting"], {5: "she painted it", 4: "he paints daily", 9: "a song"})
    assert [pid for pid, _ in ranked] == [5, 4, 9]
    assert ranked[0][1] > 0 and ranked[2][1] == 0.0


def test_empty_inputs() -> None:
    assert bm25_rescore([], [(1, "text")], {}, 1, 1.0) == [(1, 0.0)]
    assert bm25_rescore(["x"], [], {}, 0, 0.0) == []
