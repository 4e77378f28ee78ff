"""SciFact (BEIR, train split) retrieval quality through the engine: nDCG@10 and recall@100.

Every abstract becomes one memory (content = title, a blank line, then the abstract); each of
the 809 train claims is searched over the whole corpus with ``Engine.search(claim, limit=100)``.
Relevance is binary (``qrels/train.tsv``). Double quotes in a claim are dropped (they would
make a phrase filter).

    /work/venv/bin/python bench/quality_scifact.py [--data DIR] [--set semantic_weight=0.6]
        [--database-url mysql+pymysql://root@127.0.0.1:3306]

The first run embeds 5,183 abstracts with the real model (minutes on 2 cores); the vectors
are cached under /tmp (see bench/_common.py), so later runs take well under a minute.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import (
    Stopwatch,
    backend_name,
    base_parser,
    bench_engine,
    cached_embedder,
    describe_settings,
    percentile,
    settings_overrides,
    table,
)

from ephemera_tui.engine import Draft, Settings

BASE_TIME = 1_600_000_000


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=0, help="only the first N claims (0 = all)")
    args = parser.parse_args()
    folder = args.data / "scifact-train"
    if not (folder / "corpus.jsonl").exists():
        print(f"no SciFact data in {folder}", file=sys.stderr)
        return 2
    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / "train.tsv").open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            qid, doc, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[qid][doc] = int(score)
    judged = [qid for qid in queries if qid in qrels]
    if args.queries:
        judged = judged[: args.queries]
    embedder, cache = cached_embedder(
        args.no_cache, query_precision=Settings(**settings_overrides(args.set)).query_precision
    )
    overrides = settings_overrides(args.set)
    ndcgs: list[float] = []
    recalls: list[float] = []
    recall10: list[float] = []
    latencies: list[float] = []
    with bench_engine("scifact", overrides, embedder, args.database_url) as engine:
        try:
            clock = Stopwatch()
            drafts = [
                (
                    Draft(
                        content=f"{d['title']}\n\n{d['text']}".strip(),
                        created_at=BASE_TIME + n,
                        source="scifact",
                    ),
                    None,
                )
                for n, d in enumerate(corpus)
            ]
            report = engine.import_drafts(drafts, batch_size=512)
            engine.sync()
            doc_of = {mid: d["_id"] for mid, d in zip(report.ids, corpus, strict=True)}
            load_s = clock()
            for qid in judged:
                text = queries[qid].replace('"', " ")
                mark = time.perf_counter()
                result = engine.search(text, limit=100)
                latencies.append((time.perf_counter() - mark) * 1000)
                ranked = [doc_of.get(h.memory.id, "?") for h in result.hits]
                relevant = qrels[qid]
                ndcgs.append(ndcg_at(ranked, relevant, 10))
                recalls.append(len(set(ranked[:100]) & set(relevant)) / len(relevant))
                recall10.append(len(set(ranked[:10]) & set(relevant)) / len(relevant))
            desc = describe_settings(engine)
            backend = backend_name(engine)
        finally:
            cache.save()
    n = len(judged)
    figures = {
        "nDCG@10": sum(ndcgs) / n,
        "R@10": sum(recall10) / n,
        "R@100": sum(recalls) / n,
    }
    print(f"SciFact train: {len(corpus)} abstracts, {n} claims")
    print(f"settings: {desc} backend={backend}")
    print(f"load + index {load_s:.1f}s; search p50 {percentile(latencies, 50):.1f} ms")
    print(table(["claims", "nDCG@10", "R@10", "R@100"], [[n, *figures.values()]]))
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
