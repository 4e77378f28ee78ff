"""Leave-one-dataset-out: choose ranking settings on one dev set, judge them on the other.

Each dataset (LoCoMo dev, SciFact train) is imported once per backend (SQLite, and a scratch
database on ``--database-url`` when given); every query's two candidate lists are taken from
the engine's own parts as ``Engine.search`` gets them (the same parse, keyword words,
filter, candidate count and keyword budget). Fusion is then replayed offline with
``engine.fusion.fuse``, the function the pipeline calls, so a grid of settings costs seconds.

For each fusion family (min-max score fusion, reciprocal-rank fusion) the parameters are
tuned on one dataset (LoCoMo: mean of R@5 and R@10; SciFact: nDCG@10) and reported on the
other, both ways round. Baselines: keyword alone and semantic alone (each side's own order),
naive RRF (k=60, equal weights) and the engine's defaults (``Settings()``, or ``--set``).
The defaults are also run through ``Engine.search`` end to end, which must give the same
figures as the replay.

With ``--database-url`` a second table compares the backends on the defaults, including the
keyword side re-scored with BM25 (``engine.ranking.bm25_rescore``) on MySQL.

    /work/venv/bin/python bench/generalise.py [--database-url mysql+pymysql://root@127.0.0.1:3306]
"""

from __future__ import annotations

import itertools
import json
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _common import (
    CACHE_DIR,
    base_parser,
    bench_engine,
    cached_embedder,
    settings_overrides,
    table,
)
from _datasets import Dataset, figures, load_locomo, load_scifact

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.engine.fusion import fuse
from ephemera_tui.engine.ranking import bm25_rescore, document_frequencies

Ranked = list[tuple[int, float]]
LIMIT = {"locomo": 20, "scifact": 100}  # hits asked for, as in quality_locomo / quality_scifact


@dataclass(frozen=True)
class Side:
    """One query's candidates: semantic and keyword (best first) and the keyword words."""

    semantic: Ranked
    keyword: Ranked
    terms: tuple[str, ...]


@dataclass
class Run:
    """One dataset on one backend: every query's candidates and the end-to-end figures."""

    sides: list[Side]
    key_of: dict[int, str]
    pipeline: dict[str, float]


@dataclass(frozen=True)
class Config:
    """A ranking: a fusion method and its arguments, or one side alone."""

    fusion: str  # "score", "rrf", or "keyword" / "semantic" for one side's own order
    semantic_weight: float = 0.5
    rrf_k: int = 60

    def label(self) -> str:
        if self.fusion in ("keyword", "semantic"):
            return f"{self.fusion} side"
        if self.fusion == "rrf":
            return f"rrf k={self.rrf_k} w={self.semantic_weight:g}"
        return f"{self.fusion} w={self.semantic_weight:g}"


def keyword_terms(terms: Sequence[str]) -> list[str]:
    """The keyword side's words as the pipeline picks them (stopwords dropped unless that
    leaves nothing)."""
    from ephemera_tui.engine.store import STOPWORDS

    return [t for t in terms if t not in STOPWORDS] or list(terms)


def depth_for(settings: Settings, limit: int) -> int:
    """Candidates taken from each side for a search of ``limit`` hits (as the pipeline does)."""
    return max(settings.search_candidates, limit * 3)


def candidates(engine: Engine, raw: str, depth: int) -> Side:
    """Both sides' candidates for one query, from the engine's own stores."""
    parsed = engine.parse(raw)
    flt = parsed.filter
    terms = keyword_terms(parsed.terms)
    keyword = engine.store.keyword_search(terms, flt, depth, budget=engine.settings.keyword_budget)
    vectors = engine.vectors()
    if vectors is None:
        raise SystemExit(f"vector store unavailable: {engine.vector_status}")
    semantic = vectors.search(engine.embedder.embed_query(parsed.text), depth, flt.payload_part)
    return Side(list(semantic), list(keyword), tuple(terms))


def collect(
    name: str, data: Dataset, args: Any, url: str | None, log: Callable[[str], None]
) -> Run:
    """Import one dataset, take every query's candidates, and run the defaults end to end.
    ``--reuse`` reads a previous run's candidates from the cache folder instead."""
    backend = "mysql" if url else "sqlite"
    saved = CACHE_DIR / f"generalise-{name}-{backend}-{len(data.queries)}.pkl"
    if args.reuse and saved.exists():
        with saved.open("rb") as handle:
            loaded: Run = pickle.load(handle)
        log(f"{name}/{backend}: candidates read from {saved}")
        return loaded
    embedder, cache = cached_embedder(
        args.no_cache, query_precision=Settings(**settings_overrides(args.set)).query_precision
    )
    with bench_engine(name, settings_overrides(args.set), embedder, url) as engine:
        started = time.perf_counter()
        report = engine.import_drafts(((d, None) for _, d in data.docs), batch_size=512)
        engine.sync()
        key_of = {mid: key for mid, (key, _) in zip(report.ids, data.docs, strict=True)}
        log(f"{name}/{backend}: {len(key_of)} documents in {time.perf_counter() - started:.0f}s")
        cache.save()
        started = time.perf_counter()
        depth = depth_for(engine.settings, LIMIT[name])
        sides = [candidates(engine, q.raw, depth) for q in data.queries]
        rankings = []
        for q in data.queries:
            hits = engine.search(q.raw, limit=LIMIT[name]).hits
            rankings.append([key_of.get(h.memory.id, "?") for h in hits])
        log(f"{name}/{backend}: {len(sides)} queries in {time.perf_counter() - started:.0f}s")
    run = Run(sides, key_of, figures(name, rankings, data.queries))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with saved.open("wb") as handle:
        pickle.dump(run, handle)
    return run


def rescored(run: Run, data: Dataset) -> Run:
    """The same run with its keyword candidates re-scored by BM25 over their text (what the
    MySQL keyword side would return with ``engine.ranking.bm25_rescore``)."""
    text_of = {key: draft.content for key, draft in data.docs}
    freq, count, avg = document_frequencies(text_of.values())
    sides = []
    for side in run.sides:
        docs = [(pid, text_of[run.key_of[pid]]) for pid, _ in side.keyword]
        keyword = [(p, s) for p, s in bm25_rescore(side.terms, docs, freq, count, avg) if s > 0]
        sides.append(Side(side.semantic, keyword, side.terms))
    return Run(sides, run.key_of, {})


def replay(config: Config, run: Run, name: str, data: Dataset) -> dict[str, float]:
    """The dataset's figures for ``config``, fused from the saved candidates."""
    rankings = []
    limit = LIMIT[name]
    for side in run.sides:
        if config.fusion == "keyword":
            ids = [p for p, _ in side.keyword[:limit]]
        elif config.fusion == "semantic":
            ids = [p for p, _ in side.semantic[:limit]]
        else:
            fused = fuse(
                side.semantic,
                side.keyword,
                semantic_weight=config.semantic_weight,
                method=config.fusion,
                rrf_k=config.rrf_k,
            )
            ids = [f.id for f in fused[:limit]]
        rankings.append([run.key_of.get(p, "?") for p in ids])
    return figures(name, rankings, data.queries)


def objective(name: str, figs: dict[str, float]) -> float:
    return (figs["R@5"] + figs["R@10"]) / 2 if name == "locomo" else figs["nDCG@10"]


FAMILIES: dict[str, list[Config]] = {
    "score (min-max)": [Config("score", round(0.2 + 0.05 * i, 2)) for i in range(13)],
    "rrf": [
        Config("rrf", round(0.2 + 0.05 * i, 2), k)
        for i, k in itertools.product(range(13), (1, 2, 5, 10, 20, 30, 60))
    ],
}


def lodo_rows(
    runs: dict[str, Run], datasets: dict[str, Dataset], default: Config
) -> list[list[Any]]:
    """Baselines, then each family tuned on one dataset and judged on both."""
    cache: dict[tuple[str, Config], dict[str, float]] = {}

    def score(name: str, config: Config) -> dict[str, float]:
        if (name, config) not in cache:
            cache[name, config] = replay(config, runs[name], name, datasets[name])
        return cache[name, config]

    def cells(config: Config) -> list[Any]:
        lo = score("locomo", config) if "locomo" in runs else {}
        sf = score("scifact", config) if "scifact" in runs else {}
        return [lo.get("R@5", "-"), lo.get("R@10", "-"), sf.get("nDCG@10", "-")]

    rows: list[list[Any]] = []
    baselines = {
        "keyword alone": Config("keyword"),
        "semantic alone": Config("semantic"),
        "naive rrf": Config("rrf", 0.5, 60),
        "defaults": default,
    }
    for label, config in baselines.items():
        rows.append([label, "-", config.label(), *cells(config)])
    for family, configs in FAMILIES.items():
        for tuned in runs:
            best = max(configs, key=lambda c, t=tuned: objective(t, score(t, c)))  # type: ignore[misc]
            rows.append([family, tuned, best.label(), *cells(best)])
    return rows


HEADERS = ["ranking", "tuned on", "settings", "LoCoMo R@5", "LoCoMo R@10", "SciFact nDCG@10"]


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="locomo,scifact", help="comma-separated")
    parser.add_argument("--scifact-queries", type=int, default=0, help="first N claims only")
    parser.add_argument("--reuse", action="store_true", help="reuse the last run's candidates")
    args = parser.parse_args()
    settings = Settings(**settings_overrides(args.set))
    default = Config(settings.fusion, settings.semantic_weight, settings.rrf_k)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    loaders = {
        "locomo": lambda: load_locomo(args.data),
        "scifact": lambda: load_scifact(args.data, args.scifact_queries),
    }
    datasets = {name: loaders[name]() for name in args.datasets.split(",")}
    backends: dict[str, str | None] = {"sqlite": None}
    if args.database_url:
        backends["mysql"] = args.database_url
    runs = {
        backend: {name: collect(name, data, args, url, log) for name, data in datasets.items()}
        for backend, url in backends.items()
    }
    out: dict[str, Any] = {"settings": default.label()}
    for backend in backends:
        rows = lodo_rows(runs[backend], datasets, default)
        depth = settings.search_candidates
        print(f"\nLeave-one-dataset-out on {backend} (search_candidates={depth}).")
        print("Each family tuned on one set (LoCoMo: mean R@5/R@10; SciFact: nDCG@10).")
        print(table(HEADERS, rows))
        out[backend] = [dict(zip(HEADERS, r, strict=True)) for r in rows]
        print("Defaults through Engine.search end to end (equal to the 'defaults' row):")
        for name, run in runs[backend].items():
            print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in run.pipeline.items()))
    if "mysql" in runs:
        parity: list[list[Any]] = []
        variants = {
            "sqlite": runs["sqlite"],
            "mysql": runs["mysql"],
            "mysql, keyword side re-scored by BM25": {
                name: rescored(run, datasets[name]) for name, run in runs["mysql"].items()
            },
        }
        for label, by_name in variants.items():
            for config in (Config("keyword"), default):
                cells: list[Any] = [label, config.label()]
                for name in datasets:
                    figs = replay(config, by_name[name], name, datasets[name])
                    keys = ("R@5", "R@10") if name == "locomo" else ("nDCG@10",)
                    cells += [figs[k] for k in keys]
                parity.append(cells)
        headers = ["backend", "ranking"]
        for name in datasets:
            headers += ["LoCoMo R@5", "LoCoMo R@10"] if name == "locomo" else ["SciFact nDCG@10"]
        print("\nBackends compared (target: every figure within 0.02 of SQLite):")
        print(table(headers, parity))
        out["parity"] = [dict(zip(headers, r, strict=True)) for r in parity]
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
