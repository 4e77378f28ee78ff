"""Shared helpers for the benchmark scripts (not a test module; pytest never collects bench/).

- where the benchmark data lives (``../shared/data`` next to the repo, or ``--data``);
- a disk cache of document embeddings under /tmp, keyed by model name and text hash, so
  repeated runs don't re-embed datasets (the vectors are exactly the model's; ``--no-cache``
  turns it off);
- building an Engine in a temporary data dir with the real default model;
- small table printing and percentiles.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ephemera_tui.engine import Engine, Settings  # noqa: E402
from ephemera_tui.engine.embedder import CachedEmbedder, Embedder, load_embedder  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
CACHE_DIR = Path(os.environ.get("EPHEMERA_BENCH_CACHE", "/tmp/ephemera-bench-cache"))
MODEL_DIR = Path(os.environ.get("EPHEMERA_BENCH_MODELS", "/tmp/ephemera-bench-models"))


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"benchmark data dir (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="don't read or write the /tmp embedding cache"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Settings field for this run (e.g. --set fusion=rrf); repeatable",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the figures as one JSON line"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="run on this MySQL/MariaDB server (e.g. mysql+pymysql://root@127.0.0.1:3306): "
        "a scratch database is created on it and dropped afterwards (default: SQLite)",
    )
    return parser


def add_switch_interval(parser: argparse.ArgumentParser) -> None:
    """``--switch-interval-ms``: the interpreter's switch interval for this run; by default
    the ``ephemera`` program's own (``engine/handover.py``), 5 for CPython's."""
    from ephemera_tui.engine.handover import SWITCH_INTERVAL_S

    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        default=SWITCH_INTERVAL_S * 1000,
        help="interpreter switch interval (default: the ephemera program's; CPython's is 5)",
    )


def set_switch_interval(args: argparse.Namespace) -> None:
    sys.setswitchinterval(args.switch_interval_ms / 1000)
    print(f"switch interval {args.switch_interval_ms:g} ms", flush=True)


@contextlib.contextmanager
def scratch_database(server_url: str | None) -> Iterator[str | None]:
    """A fresh database on a MySQL/MariaDB server for one run, dropped afterwards.

    ``server_url`` names the server; a database part in it is ignored (the scratch database
    gets a new name, so a run never touches existing data). None yields None (SQLite).
    """
    if not server_url:
        yield None
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(server_url).set(database=None)
    name = f"ephemera_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    finally:
        admin.dispose()


@contextlib.contextmanager
def bench_engine(
    prefix: str,
    overrides: dict[str, Any] | None = None,
    embedder: CachedEmbedder | None = None,
    database_url: str | None = None,
) -> Iterator[Engine]:
    """An Engine in a temporary data dir (and a scratch MySQL database when a server is
    given), closed and deleted afterwards."""
    with temp_dir(prefix) as tmp, scratch_database(database_url) as url:
        settings = dict(overrides or {})
        if url:
            settings["database_url"] = url
        engine = make_engine(Path(tmp), settings, embedder)
        try:
            yield engine
        finally:
            engine.close()


def backend_name(engine: Engine) -> str:
    """``sqlite`` or ``mysql`` (as the SQL store sees its URL)."""
    url = engine.settings.resolved_database_url
    return "mysql" if url.startswith("mysql") else "sqlite"


def settings_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    from ephemera_tui.engine.config import _coerce

    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = _coerce(key, value, "--set")
    return out


def _key(model: str, text: str) -> bytes:
    return hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).digest()


class DiskCache:
    """Embeddings on disk: one .npz per model (keys = 16-byte text hashes, float32 vectors)."""

    def __init__(self, model: str, enabled: bool = True) -> None:
        self.model = model
        self.enabled = enabled
        safe = model.replace("/", "__")
        self.path = CACHE_DIR / f"{safe}.npz"
        self._map: dict[bytes, np.ndarray] = {}
        self._dirty = False
        self._lock = threading.Lock()
        if enabled and self.path.exists():
            with np.load(self.path) as data:
                keys, vecs = data["keys"], data["vectors"]
            self._map = {bytes(k): v for k, v in zip(keys, vecs, strict=True)}

    def get(self, text: str) -> np.ndarray | None:
        return self._map.get(_key(self.model, text)) if self.enabled else None

    def put(self, text: str, vec: np.ndarray) -> None:
        if self.enabled:
            with self._lock:
                self._map[_key(self.model, text)] = np.asarray(vec, dtype=np.float32)
                self._dirty = True

    def save(self) -> None:
        if not (self.enabled and self._dirty):
            return
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        keys = np.frombuffer(b"".join(self._map), dtype=np.uint8).reshape(-1, 16)
        vecs = np.stack(list(self._map.values())).astype(np.float32)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vecs)
        tmp.replace(self.path)
        self._dirty = False


class DiskCachedModel:
    """The real embedder behind a disk cache; the model itself loads only on a cache miss."""

    def __init__(self, model: str, cache: DiskCache, query_precision: str = "int8") -> None:
        self.name = model
        self.cache = cache
        self._inner: Embedder | None = None
        self.dim = 384
        self.misses = 0
        self.int8_queries = query_precision == "int8"
        # Query vectors are cached per query path (the float path keeps the older key).
        self.query_key = "\x00query-int8\x00" if self.int8_queries else "\x00query\x00"

    @property
    def inner(self) -> Embedder:
        if self._inner is None:
            self._inner = load_embedder(self.name, MODEL_DIR, int8_queries=self.int8_queries).inner
            prepare = getattr(self._inner, "prepare_queries", None)
            if prepare is not None:  # queries as the app and the service embed them
                prepare()
            self.dim = self._inner.dim
        return self._inner

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out: list[np.ndarray | None] = [self.cache.get(t) for t in texts]
        todo = [i for i, v in enumerate(out) if v is None]
        if todo:
            self.misses += len(todo)
            fresh = self.inner.embed([texts[i] for i in todo])
            for i, vec in zip(todo, fresh, strict=True):
                out[i] = vec
                self.cache.put(texts[i], vec)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(out)  # type: ignore[arg-type]

    def embed_query(self, text: str) -> np.ndarray:
        # Queries go through the same model call as the engine's (embed of one text).
        vec = self.cache.get(self.query_key + text)
        if vec is None:
            self.misses += 1
            vec = self.inner.embed_query(text)
            self.cache.put(self.query_key + text, vec)
        return vec


def default_model() -> str:
    default = Settings.__dataclass_fields__["embedding_model"].default
    assert isinstance(default, str)
    return default


def cached_embedder(
    no_cache: bool = False, model: str | None = None, query_precision: str = "int8"
) -> tuple[CachedEmbedder, DiskCache]:
    """The real model behind a disk cache; queries embedded as ``query_precision`` says."""
    model = model or default_model()
    cache = DiskCache(model, enabled=not no_cache)
    inner = DiskCachedModel(model, cache, query_precision)
    return CachedEmbedder(inner, max_entries=1_000_000), cache


def make_engine(
    data_dir: Path, overrides: dict[str, Any] | None = None, embedder: CachedEmbedder | None = None
) -> Engine:
    settings = Settings(data_dir=data_dir, **(overrides or {}))
    return Engine(settings, embedder=embedder)


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"ephemera-bench-{prefix}-")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable on a terminal, pasteable into docs)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def describe_settings(engine: Engine) -> str:
    s = engine.settings
    names = ("fusion", "semantic_weight", "rrf_k", "search_candidates", "keyword_budget")
    knobs = " ".join(f"{n}={getattr(s, n)}" for n in names if hasattr(s, n))
    return f"model={s.embedding_model} {knobs}"


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def table_sizes(url: str) -> dict[str, int]:
    """Data + index bytes per table, as the server reports them (after ANALYZE)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = [r[0] for r in conn.execute(text("SHOW TABLES"))]
            for name in names:
                conn.execute(text(f"ANALYZE TABLE `{name}`"))
            rows = conn.execute(
                text(
                    "SELECT table_name, data_length + index_length FROM information_schema.tables"
                    " WHERE table_schema = :db"
                ),
                {"db": database},
            ).all()
    finally:
        engine.dispose()
    return {str(r[0]): int(r[1] or 0) for r in rows}
