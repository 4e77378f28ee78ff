"""Search latency p50/p95 through ``Engine.search`` at 10k and 100k memories (embedded default).

The corpus is synthetic but realistic: each memory joins one or two real LoCoMo turns (as
``Speaker: text``), with a tag (one of 20), a source (one of 4), an importance and a date
spread over three years. Its vector is the real model's embedding of those turns (cached
under /tmp), summed, randomly perturbed and normalised, inserted directly through the
engine's SQL store and vector store so a 100k corpus builds in a minute or two instead of
an hour of embedding. Queries are the LoCoMo questions, each embedded by the real model at
search time (every query text is distinct, so the engine's LRU cache never answers).

Scenarios, each over the same queries:
- ``hybrid``: free text, no filter;
- ``hybrid+filter``: free text with ``tag:``, ``after:``, ``importance>=`` or ``source:``
  (rotating);
- ``keyword``: the keyword side alone (``Engine.search(..., keyword_only=True)``, what the app
  shows while typing and what a second process gets while another holds the vector store);
- ``keyword+filter``.

The floor line (``hybrid`` and ``hybrid+filter``) times, for the same queries on the same
corpus and in the same process, the bare parts a search cannot do without: the model's ONNX
call on the already tokenised query (the engine's own one-thread session), the qdrant-edge
query the engine sent (same request, same filter, called on the shard directly), the SQL of
the keyword side and of the 20-row fetch as the engine ran them (captured, then replayed on
a raw DB-API connection). A query's floor is ``max(onnx + vector, keyword) + fetch`` (the
keyword side can run while the query embeds); the table gives Ephemera's p95 over the
floor's p95. Every row carries the 1-minute load average at its end.

The interpreter's switch interval is the ``ephemera`` program's (1 ms, ``engine/handover.py``)
unless ``--switch-interval-ms`` says otherwise (5 is CPython's default).

``--format rows`` (or ``one``) builds the vector store in an older format, to compare
formats in one sitting.

    /work/venv/bin/python bench/latency.py [--sizes 10000,100000] [--queries 200] [--no-floor]
        [--format head+rows|rows|one]
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    DiskCachedModel,
    Stopwatch,
    add_switch_interval,
    base_parser,
    cached_embedder,
    make_engine,
    percentile,
    set_switch_interval,
    settings_overrides,
    table,
    temp_dir,
)
from quality_locomo import load_conversation

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.embedder import CachedEmbedder, Embedder
from ephemera_tui.engine.vectors import VectorPoint
from ephemera_tui.engine.vectors.base import FORMATS, HEAD_ROWS
from ephemera_tui.engine.vectors.edge import EdgeVectors
from ephemera_tui.engine.vectors.rows import compose, sentences

TAGS = [
    "work",
    "family",
    "health",
    "travel",
    "books",
    "music",
    "art",
    "kids",
    "friends",
    "sport",
    "garden",
    "cooking",
    "money",
    "school",
    "dreams",
    "pets",
    "house",
    "ideas",
    "films",
    "misc",
]
SOURCES = ["note", "chat", "journal", "import"]
START = 1_640_995_200  # 2022-01-01
SPAN = 3 * 365 * 86400


def rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 1e6


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def corpus_inputs(
    data: Path, no_cache: bool = False, query_precision: str = "int8"
) -> tuple[list[str], list[str], np.ndarray, CachedEmbedder, Embedder]:
    """LoCoMo turns and questions, the turns' real embeddings (disk-cached), the caching
    embedder that made them, and the real model itself (for searches at run time)."""
    convs = [load_conversation(f) for f in sorted((data / "locomo-dev").glob("conv-*.json"))]
    turns = [d.content for _, ts, _ in convs for _, d in ts]
    questions = [q["question"].replace('"', " ") for _, _, qs in convs for q in qs]
    doc_embedder, cache = cached_embedder(no_cache, query_precision=query_precision)
    turn_vectors = doc_embedder.embed(turns)
    cache.save()
    disk_model = doc_embedder.inner
    assert isinstance(disk_model, DiskCachedModel)
    return turns, questions, turn_vectors, doc_embedder, disk_model.inner  # loads the model


def turn_sentences(turns: list[str], no_cache: bool = False) -> list[np.ndarray]:
    """Each turn's sentence vectors (none for a turn that gets one row), disk-cached: the
    rows a synthetic memory built on that turn carries (``engine/vectors/rows.py``)."""
    embedder, cache = cached_embedder(no_cache)
    split = [sentences(t) for t in turns]
    flat = [s for parts in split for s in parts]
    vectors = embedder.embed(flat) if flat else np.zeros((0, 384), dtype=np.float32)
    cache.save()
    out, at = [], 0
    for parts in split:
        out.append(vectors[at : at + len(parts)])
        at += len(parts)
    return out


def build_corpus(
    engine: Engine,
    turns: list[str],
    vectors: np.ndarray,
    size: int,
    seed: int = 7,
    turn_rows: list[np.ndarray] | None = None,
) -> float:
    """Insert ``size`` synthetic memories with vectors; return seconds taken. With
    ``turn_rows`` (``turn_sentences``) a memory built on a turn of several sentences gets
    that turn's sentence rows, as the engine would store them."""
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    clock = Stopwatch()
    store, vec_store = engine.store, engine.vectors()
    manager = getattr(engine, "vector_manager", None)
    payload = manager.payload if manager is not None else engine._payload  # before the redesign
    batch = 5000
    for offset in range(0, size, batch):
        n = min(batch, size - offset)
        first = rng.integers(0, len(turns), n)
        second = rng.integers(0, len(turns), n)
        two = rng.random(n) < 0.4
        drafts = []
        vecs = vectors[first].copy()
        vecs[two] += vectors[second[two]]
        vecs += rng.normal(0, 0.35 / np.sqrt(vectors.shape[1]), vecs.shape).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for i in range(n):
            text = turns[first[i]]
            if two[i]:
                text += " " + turns[second[i]].split(": ", 1)[-1]
            drafts.append(
                Draft(
                    content=text,
                    created_at=START + pyrng.randrange(SPAN),
                    source=pyrng.choice(SOURCES),
                    importance=pyrng.randrange(256),
                    tags=(pyrng.choice(TAGS),),
                )
            )
        memories = store.insert(drafts)
        points = [
            VectorPoint(
                m.id,
                compose(vecs[i], turn_rows[first[i]]) if turn_rows is not None else vecs[i],
                payload(m),
            )
            for i, m in enumerate(memories)
        ]
        vec_store.upsert(points)
        store.clear_outbox(store.outbox_for([m.id for m in memories]))
    vec_store.flush()
    return clock()


def engine_in_format(
    data: Path, overrides: dict[str, Any], embedder: CachedEmbedder, stored: str
) -> Engine:
    """An engine on ``data`` whose vector store is made in format ``stored`` (an older one,
    to compare with the engine's own in one sitting: the store keeps the format it has)."""
    engine = make_engine(data, overrides, embedder)
    if stored != HEAD_ROWS:
        path, dim = engine.vectors_path, embedder.dim
        engine.close()
        EdgeVectors(path, dim, format=stored).close()
        engine = make_engine(data, overrides, embedder)
    return engine


def app_engine_on_corpus(
    data: Path, overrides: dict[str, Any], size: int, inputs: tuple[Any, ...]
) -> Engine:
    """Build the ``size``-memory corpus in ``data``, then reopen it as the app would: the real
    model, uncached, with its query session ready and the vector store open."""
    turns, _questions, turn_vectors, doc_embedder, model = inputs
    engine = make_engine(data, overrides, doc_embedder)
    build_corpus(engine, turns, turn_vectors, size)
    engine.close()
    engine = make_engine(data, overrides, CachedEmbedder(model, max_entries=0))
    engine.prepare_interactive()
    engine.vectors()
    return engine


def load1() -> float:
    """The 1-minute load average (printed beside every timing)."""
    return os.getloadavg()[0]


class Floor:
    """The bare parts of one search, timed on the engine's own model session, shard and
    database (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        from sqlalchemy import event

        self.engine = engine
        inner = engine.embedder.inner
        direct = getattr(inner, "direct_query", None)
        if direct is None:
            raise SystemExit("floor: the embedder has no direct ONNX path (not a fastembed model)")
        self.direct: Any = direct
        self.vectors = engine.vectors()
        shard = getattr(self.vectors, "_shard", None)
        if shard is None or not hasattr(self.vectors, "_call"):
            raise SystemExit("floor: the vector store is not the embedded qdrant-edge shard")
        self.shard: Any = shard
        self.statements: list[tuple[str, object]] = []
        self.requests: list[object] = []
        self._capturing = False
        sql_engine = engine.store.engine

        def capture_sql(*args: Any) -> None:  # conn, cursor, statement, parameters, ...
            statement, parameters = args[2], args[3]
            if self._capturing:
                self.statements.append((statement, parameters))

        event.listen(sql_engine, "before_cursor_execute", capture_sql)
        original = self.vectors._call

        def capture_call(action: str, method: str, *args: object) -> object:
            if self._capturing and method == "query":
                self.requests.append(args[0])
            return original(action, method, *args)

        self.vectors._call = capture_call  # type: ignore[method-assign]
        self.raw = sql_engine.raw_connection()

    def close(self) -> None:
        self.raw.close()

    def _replay(self, statements: list[tuple[str, object]]) -> float:
        cursor = self.raw.cursor()
        mark = time.perf_counter()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        took = (time.perf_counter() - mark) * 1000
        cursor.close()
        return took

    def measure(self, raw: str) -> dict[str, float]:
        """Run the search once to capture what it sends, then time the bare parts."""
        self.statements.clear()
        self.requests.clear()
        self._capturing = True
        try:
            self.engine.search(raw, limit=20)
        finally:
            self._capturing = False
        keyword = [(s, p) for s, p in self.statements if "MATCH" in s.upper()]
        fetch = [
            (s, p)
            for s, p in self.statements
            if "FROM MEMORY_FRAGMENTS" in s.upper()
            and " IN (" in s.upper()
            and "MATCH" not in s.upper()
        ]
        feed = self.direct.feed(self.engine.parse(raw).text)
        mark = time.perf_counter()
        self.direct.run(feed)
        onnx = (time.perf_counter() - mark) * 1000
        vector = 0.0
        for request in self.requests:
            mark = time.perf_counter()
            self.shard.query(request)
            vector += (time.perf_counter() - mark) * 1000
        kw = self._replay(keyword)
        fetched = self._replay(fetch)
        return {
            "onnx": onnx,
            "vector": vector,
            "keyword": kw,
            "fetch": fetched,
            "floor": max(onnx + vector, kw) + fetched,
        }


def run_floor(engine: Engine, queries: list[str], with_filter: bool) -> dict[str, float]:
    floor = Floor(engine)
    try:
        parts: dict[str, list[float]] = {}
        for n, query in enumerate(queries):
            raw = filtered(query, n) if with_filter else query
            for key, value in floor.measure(raw).items():
                parts.setdefault(key, []).append(value)
    finally:
        floor.close()
    out = {f"{k}_p50": percentile(v, 50) for k, v in parts.items()}
    out["floor_p95"] = percentile(parts["floor"], 95)
    return out


def filtered(query: str, n: int) -> str:
    kind = n % 4
    if kind == 0:
        return f"tag:{TAGS[n % len(TAGS)]} {query}"
    if kind == 1:
        return f"after:2023-06-01 {query}"
    if kind == 2:
        return f"importance>=128 {query}"
    return f"source:{SOURCES[n % len(SOURCES)]} {query}"


def run_scenario(
    engine: Engine, queries: list[str], semantic: bool, with_filter: bool
) -> dict[str, float]:
    totals: list[float] = []
    parts: dict[str, list[float]] = {}
    for n, query in enumerate(queries):
        raw = filtered(query, n) if with_filter else query
        mark = time.perf_counter()
        result = engine.search(raw, limit=20, keyword_only=not semantic)
        totals.append((time.perf_counter() - mark) * 1000)
        for key, value in result.timings_ms.items():
            parts.setdefault(key, []).append(value)
        if semantic and result.mode != "hybrid":
            raise SystemExit(f"expected a hybrid search, got {result.mode}: {result.notices}")
    return {
        "p50": percentile(totals, 50),
        "p95": percentile(totals, 95),
        "max": max(totals),
        **{f"{k}_p50": percentile(v, 50) for k, v in parts.items() if k != "total"},
    }


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--queries", type=int, default=200, help="queries per scenario")
    parser.add_argument(
        "--optimize", action="store_true", help="build the HNSW index (ephemera optimize) first"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor line")
    parser.add_argument(
        "--one-row", action="store_true", help="one row per memory (no sentence rows)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default=HEAD_ROWS, help="vector store format to build"
    )
    add_switch_interval(parser)
    args = parser.parse_args()
    set_switch_interval(args)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    overrides = settings_overrides(args.set)
    precision = Settings(**overrides).query_precision
    turns, questions, turn_vectors, doc_embedder, model = corpus_inputs(
        args.data, args.no_cache, precision
    )
    turn_rows = None if args.one_row else turn_sentences(turns, args.no_cache)
    rows = []
    floor_rows = []
    figures = []
    for size in sizes:
        with temp_dir(f"latency-{size}") as tmp:
            data = Path(tmp)
            engine = engine_in_format(data, overrides, doc_embedder, args.format)
            build_s = build_corpus(engine, turns, turn_vectors, size, turn_rows=turn_rows)
            if args.optimize:
                from ephemera_tui.engine.vectors.index import build_index

                built = build_index(engine)
                print(f"{size} memories: HNSW index built in {built.seconds}s {built.after}")
            engine.close()
            gc.collect()
            # Reopen as a user would, with the real model; no LRU, so every query is embedded.
            mark = time.perf_counter()
            engine = make_engine(data, overrides, CachedEmbedder(model, max_entries=0))
            engine.prepare_interactive()  # the query session, as the app does
            engine.vectors()
            open_s = time.perf_counter() - mark
            try:
                for n in range(10):  # warm up
                    engine.search(questions[n])
                scenarios = [
                    ("hybrid", True, False),
                    ("hybrid+filter", True, True),
                    ("keyword", False, False),
                    ("keyword+filter", False, True),
                ]
                for s_index, (name, semantic, with_filter) in enumerate(scenarios):
                    qs = [
                        questions[(i + s_index * 97) % len(questions)] for i in range(args.queries)
                    ]
                    stats: dict[str, Any] = dict(run_scenario(engine, qs, semantic, with_filter))
                    stats["load1"] = load1()
                    if semantic and not args.no_floor:
                        bare = run_floor(engine, qs, with_filter)
                        bare["load1"] = load1()
                        stats["floor"] = bare
                        floor_rows.append(
                            [
                                size,
                                name,
                                stats["p95"],
                                bare["floor_p50"],
                                bare["floor_p95"],
                                stats["p95"] / bare["floor_p95"],
                                bare["onnx_p50"],
                                bare["vector_p50"],
                                bare["keyword_p50"],
                                bare["fetch_p50"],
                                bare["load1"],
                            ]
                        )
                    row = {"memories": size, "scenario": name, **stats}
                    figures.append(row)
                    rows.append(
                        [
                            size,
                            name,
                            stats["p50"],
                            stats["p95"],
                            stats.get("embed_p50", 0.0),
                            stats.get("vector_p50", 0.0),
                            stats.get("keyword_p50", 0.0),
                            stats["load1"],
                        ]
                    )
                print(
                    f"{size} memories: built in {build_s:.0f}s, reopened in {open_s:.2f}s, "
                    f"RSS {rss_mb():.0f} MB, data dir {dir_mb(data):.0f} MB, "
                    f"vector format {getattr(engine.vectors(), 'format', '?')}",
                    flush=True,
                )
            finally:
                engine.close()
    print(
        table(
            [
                "memories",
                "scenario",
                "p50 ms",
                "p95 ms",
                "embed p50",
                "vector p50",
                "keyword p50",
                "load",
            ],
            rows,
        )
    )
    if floor_rows:
        print("\nFloor: bare ONNX call + bare shard query vs bare keyword SQL, + bare 20-row fetch")
        print(
            table(
                [
                    "memories",
                    "scenario",
                    "p95 ms",
                    "floor p50",
                    "floor p95",
                    "p95 / floor p95",
                    "onnx p50",
                    "shard p50",
                    "keyword sql p50",
                    "fetch p50",
                    "load",
                ],
                floor_rows,
            )
        )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
