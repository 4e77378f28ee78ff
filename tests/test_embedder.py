"""Embeddings: the real offline default model, the LRU cache, dimension checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.embedder import (
    DEFAULT_MODEL,
    FAKE_MODEL,
    CachedEmbedder,
    FastEmbedder,
    HashEmbedder,
    assemble_default_model,
    load_embedder,
)
from ephemera_tui.engine.errors import EmbeddingError


@pytest.fixture(scope="module")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> CachedEmbedder:
    return load_embedder(DEFAULT_MODEL, tmp_path_factory.mktemp("models"))


@pytest.mark.model
def test_default_model_loads_offline_and_ranks_by_meaning(
    real_model: CachedEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert real_model.dim == 384
    docs = real_model.embed(
        ["We climbed a mountain trail at dawn", "My tax return is due in April", "Cats purr"]
    )
    query = real_model.embed_query("hiking in the hills")
    scores = docs @ query
    assert int(np.argmax(scores)) == 0
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-3)
    # batch order is restored after length-sorting
    single = real_model.inner.embed(["Cats purr"])[0]
    assert float(single @ docs[2]) > 0.999


@pytest.mark.model
def test_engine_with_the_real_model_finds_by_meaning(
    tmp_path: Path, real_model: CachedEmbedder
) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model=DEFAULT_MODEL)
    with Engine(settings, embedder=real_model) as engine:
        hike = engine.add(Draft("We climbed a steep mountain trail at dawn"))
        engine.add(Draft("The quarterly tax paperwork is finally filed"))
        result = engine.search("hiking in the hills")
        assert result.hits[0].memory.id == hike.id
        assert result.hits[0].keyword_rank is None  # found by meaning alone


def test_cache_counts_hits_and_misses() -> None:
    cached = CachedEmbedder(HashEmbedder(), max_entries=2)
    cached.embed(["a", "b"])
    cached.embed(["a"])
    assert cached.stats() == {"hits": 1, "misses": 2, "size": 2}
    cached.embed(["c"])  # evicts "b", the least recently used
    cached.embed(["b"])
    assert cached.stats()["misses"] == 4
    cached.embed_query("q")
    cached.embed_query("q")
    assert cached.stats()["hits"] == 2


def test_model_files_are_checksum_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = assemble_default_model(tmp_path)
    assert (folder / "model.onnx").exists() and (folder / "tokenizer_config.json").exists()
    import ephemera_tui.engine.embedder as module

    monkeypatch.setattr(module, "_MODEL_SHA256", "0" * 64)
    with pytest.raises(EmbeddingError, match="sha256"):
        assemble_default_model(tmp_path / "other")


def test_wrong_dimension_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        engine.add(Draft("made with 384-d vectors"))
    small = CachedEmbedder(HashEmbedder(dim=8, name="fake-hash-384"))
    with Engine(replace(settings), embedder=small) as engine:
        result = engine.search("vectors")
        assert result.mode == "keyword"
        assert any("8-d vectors" in n and "384-d" in n for n in result.notices)


def test_changed_model_is_refused_until_reembedded(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        engine.add(Draft("first model"))
    other = CachedEmbedder(HashEmbedder(name="other-model"))
    with Engine(settings, embedder=other) as engine:
        result = engine.search("model")
        assert any("reembed" in n for n in result.notices)
        engine.reembed()
        assert engine.search("model").mode == "hybrid"
        assert engine.check().problems == 0


def test_wrong_dimension_keeps_writes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, embedding_model="fake-hash-384")
    with Engine(settings) as engine:
        engine.add(Draft("made with 384-d vectors"))
    small = CachedEmbedder(HashEmbedder(dim=8, name="fake-hash-384"))
    with Engine(settings, embedder=small) as engine:
        memory = engine.add(Draft("written while the model does not fit"))
        assert engine.pending() == 1
        assert "8-d" in engine.vector_status
        report = engine.sync()
        assert report.error is not None and "384-d" in report.error
        assert engine.get(memory.id).content.startswith("written")


def _model_folder(tmp_path: Path) -> Path:
    """A user's model folder made of the default model's two files (no tokenizer_config)."""
    import shutil

    source = assemble_default_model(tmp_path / "assembled")
    folder = tmp_path / "models" / "x"
    folder.mkdir(parents=True)
    shutil.copyfile(source / "model.onnx", folder / "model.onnx")
    shutil.copyfile(source / "tokenizer.json", folder / "tokenizer.json")
    return folder


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("network used in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.model
def test_model_folder_on_disk_loads_without_network(
    tmp_path: Path, real_model: CachedEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _model_folder(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    _no_network(monkeypatch)
    loaded = load_embedder(f"path:{folder}", tmp_path / "cache")
    assert loaded.name == f"path:{folder}" and loaded.dim == 384
    texts = ["We climbed a mountain trail at dawn", "Cats purr"]
    assert np.allclose(loaded.embed(texts), real_model.embed(texts), atol=1e-6)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written into it
    # and through the engine's settings, end to end
    settings = Settings(data_dir=tmp_path / "data", embedding_model=f"path:{folder}")
    with Engine(settings) as engine:
        hike = engine.add(Draft("We climbed a steep mountain trail at dawn"))
        engine.add(Draft("The quarterly tax paperwork is finally filed"))
        assert engine.search("hiking in the hills").hits[0].memory.id == hike.id


@pytest.mark.parametrize(
    ("files", "message"),
    [(None, "does not exist"), ((), "no tokenizer.json"), (("tokenizer.json",), "no .onnx")],
)
def test_bad_model_folder_is_a_one_line_error(
    tmp_path: Path, files: tuple[str, ...] | None, message: str
) -> None:
    folder = tmp_path / "x"
    if files is not None:
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    with pytest.raises(EmbeddingError, match=message) as caught:
        load_embedder(f"path:{folder}", tmp_path / "cache")
    assert "\n" not in str(caught.value)


@pytest.mark.model
def test_query_fast_path_matches_fastembed(tmp_path: Path) -> None:
    inner = load_embedder(DEFAULT_MODEL, tmp_path, int8_queries=False).inner
    assert isinstance(inner, FastEmbedder)
    inner.prepare_queries()
    assert inner.query_path == "float"  # the probe check passed on this fastembed
    for text in ["When did Caroline go to the LGBTQ support group?", "x", "日本 の 山 " * 90]:
        expected = np.asarray(next(iter(inner._query_model.embed([text]))), dtype=np.float32)
        assert np.allclose(inner.embed_query(text), expected, atol=1e-6)


@pytest.mark.model
def test_queries_of_the_default_model_run_in_int8_and_agree(real_model: CachedEmbedder) -> None:
    inner = real_model.inner
    assert isinstance(inner, FastEmbedder)
    inner.prepare_queries()
    assert inner.query_path == "int8"
    texts = [
        "When did Caroline go to the LGBTQ support group?",
        "What did Melanie paint last summer?",
        "Vitamin D deficiency raises the risk of fractures in the elderly.",
        "x",
    ]
    for text in texts:
        expected = np.asarray(next(iter(inner._query_model.embed([text]))), dtype=np.float32)
        got = inner.embed_query(text)
        assert got.shape == (384,) and abs(float(np.linalg.norm(got)) - 1.0) < 1e-3
        assert float(got @ expected) > 0.98
    stored = inner.embed(texts)  # memories are still embedded by the model itself
    for text, vector in zip(texts, stored, strict=True):
        expected = np.asarray(next(iter(inner._query_model.embed([text]))), dtype=np.float32)
        assert np.allclose(vector, expected, atol=1e-5)


def test_fake_model_names_carry_their_dimension() -> None:
    assert load_embedder("fake-hash-64", Path("/nonexistent")).dim == 64
    assert load_embedder(FAKE_MODEL, Path("/nonexistent")).dim == 384
    with pytest.raises(EmbeddingError, match="fake-hash-<dim>"):
        load_embedder("fake-hash-big", Path("/nonexistent"))


def test_switching_to_a_model_of_another_dimension_reembeds(settings: Settings) -> None:
    with Engine(settings) as engine:  # fake-hash-384
        for text in ["alpine lake hike", "tax return due", "cats purr at night"]:
            engine.add(Draft(text))
    small = replace(settings, embedding_model="fake-hash-64")
    with Engine(small) as engine:
        assert engine.embedder.dim == 64
        refused = engine.search("lake hike")
        assert refused.mode == "keyword" and any("reembed" in n for n in refused.notices)
        report = engine.reembed()
        assert report.embedded == 3
        result = engine.search("lake hike")
        assert result.mode == "hybrid" and not result.notices
        assert result.hits[0].memory.content == "alpine lake hike"
        assert result.hits[0].semantic_rank == 1
        assert engine.check().problems == 0


def test_a_model_without_int8_weights_keeps_the_float_query_path(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from ephemera_tui.engine import query_model

    weights = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weights],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    assert query_model.build(tmp_path) is None
    assert not (tmp_path / query_model.FILE).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
