"""``ephemera optimize``: the HNSW build of the embedded store, then search as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, EphemeraError, Settings
from ephemera_tui.engine.vectors.index import build_index

from .conftest import fill_numbered
from .helpers import invoke_ephemera


@pytest.mark.slow
def test_index_build_keeps_search_and_filters_working(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        fill_numbered(engine, 8000)
        result = build_index(engine)
        assert result.after["points"] == 8000
        assert result.after["indexed"] > result.before["indexed"] == 0
        hits = engine.search("topic7 theme3 tag:t2").hits
        assert hits and all("t2" in h.memory.tags for h in hits)
        fresh = engine.add(Draft("added after the index was built, topic7"))
        assert engine.search("added after the index").hits[0].memory.id == fresh.id
        assert engine.check().problems == 0


def test_server_backend_has_nothing_to_build(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384", qdrant_url=":memory:")
    with Engine(settings) as engine, pytest.raises(EphemeraError, match="builds its own index"):
        build_index(engine)


def test_optimize_command(cli_env: dict[str, str]) -> None:
    import json

    added = invoke_ephemera("add", "a memory to index", env=cli_env)
    assert added.returncode == 0, added.stderr
    done = invoke_ephemera("optimize", "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["after"]["points"] == 1
