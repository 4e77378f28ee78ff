"""After importing a movies dump, a film is found by its overview — the text people searched
in MeiliSearch — not only by its title: by keyword (fake embedder) and by meaning (the real
model, ``-m model``). Reads the real V1 dump MeiliSearch wrote (skips when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.migration import state
from ephemera_tui.migration.importer import Importer
from ephemera_tui.migration.mapping import build_mapping
from ephemera_tui.migration.readers import read_source
from tests.test_meili_support import REAL_DUMP_FILES, real_dump


def import_movies(engine: Engine) -> dict[str, int]:
    """Import the V1 movies dump; return primary key → memory id."""
    source = read_source(real_dump(REAL_DUMP_FILES["V1"]))
    fmap = build_mapping(
        [d.data for d in source.documents], {}, source.primary_key, source.settings
    )
    report = Importer(engine).run(source, fmap)
    assert report.imported == 53
    keys = [str(d.data["id"]) for d in source.documents]
    return {
        k: r.memory_id for k, r in state.mappings_by_key(engine.store, "indexUID", keys).items()
    }


def test_a_film_is_found_first_by_words_of_its_overview(engine: Engine) -> None:
    ids = import_movies(engine)
    # American Beauty (14): none of these words is in its title
    result = engine.search("depressed suburban father in a mid-life crisis")
    assert result.hits, result
    top = result.hits[0]
    assert top.memory.id == ids["14"]
    assert top.memory.content.startswith("American Beauty\n")
    assert top.keyword_rank == 1
    # and a second film, by a rarer phrase of its overview
    nemo = engine.search("clownfish taken to a dentist's office aquarium").hits[0]
    assert nemo.memory.id == ids["12"] and nemo.keyword_rank == 1


@pytest.mark.model
def test_a_film_is_found_first_by_the_meaning_of_its_overview(tmp_path: Path) -> None:
    from ephemera_tui.engine.embedder import DEFAULT_MODEL, load_embedder

    model = load_embedder(DEFAULT_MODEL, tmp_path / "models")
    settings = Settings(data_dir=tmp_path / "data", embedding_model=DEFAULT_MODEL)
    with Engine(settings, embedder=model) as engine:
        ids = import_movies(engine)
        assert engine.pending() == 0
        # Finding Nemo (12), described without a word of its title or overview
        result = engine.search(
            "tiny striped swimmer grabbed off coral, stuck in a tank at a tooth doctor"
        )
        top = result.hits[0]
        assert top.memory.id == ids["12"], [
            h.memory.content.split("\n")[0] for h in result.hits[:5]
        ]
        assert top.semantic_rank == 1 and top.keyword_rank is None  # no word in common
        # Ariel (2): a Finnish miner framed for a crime
        query = "labourer from Finland wrongfully imprisoned yearns to emigrate"
        ariel = engine.search(query).hits[0]
        assert ariel.memory.id == ids["2"] and ariel.semantic_rank == 1, ariel
        assert ariel.keyword_rank is None
