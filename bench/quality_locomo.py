"""LoCoMo dev retrieval quality through the engine (protocol of ../shared/data/README.md).

Every turn becomes one memory, content ``Speaker: text``, created at its session's date and
time (plus the turn's index in seconds, so turns keep their order and identical short turns
such as "Bye!" are not taken for duplicates), tagged with its conversation id. Each question
(categories 1-4; category 5 is adversarial and left out, as are questions without evidence)
is searched with ``tag:<conversation>`` through ``Engine.search``, so the filter path is the
one a user gets. Double quotes in a question are dropped (they would make a phrase filter).

Prints recall@1/5/10/20 of the evidence turns per category and overall, and session-level
recall@5 (sessions ranked by their first hit).

    /work/venv/bin/python bench/quality_locomo.py [--data DIR] [--set semantic_weight=0.6]
        [--database-url mysql+pymysql://root@127.0.0.1:3306]
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict

from _common import (
    Stopwatch,
    backend_name,
    base_parser,
    bench_engine,
    cached_embedder,
    describe_settings,
    settings_overrides,
    table,
)
from _datasets import LOCOMO_CATEGORIES as CATEGORIES
from _datasets import load_conversation, session_time  # noqa: F401 (re-exported)

from ephemera_tui.engine import Settings

KS = (1, 5, 10, 20)


def session_of(dia_id: str) -> str:
    return dia_id.split(":")[0]


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="hits per question (>= 20)")
    args = parser.parse_args()
    folder = args.data / "locomo-dev"
    files = sorted(folder.glob("conv-*.json"))
    if not files:
        print(f"no LoCoMo files in {folder}", file=sys.stderr)
        return 2
    embedder, cache = cached_embedder(
        args.no_cache, query_precision=Settings(**settings_overrides(args.set)).query_precision
    )
    overrides = settings_overrides(args.set)
    per_cat: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    session_recall: dict[int, list[float]] = defaultdict(list)
    latencies: list[float] = []
    with bench_engine("locomo", overrides, embedder, args.database_url) as engine:
        try:
            clock = Stopwatch()
            convs = [load_conversation(f) for f in files]
            id_of: dict[tuple[str, str], int] = {}
            for name, turns, _ in convs:
                report = engine.import_drafts(((d, None) for _, d in turns))
                if report.skipped:
                    print(f"warning: {name}: {report.skipped} turns skipped", file=sys.stderr)
                for (dia, _), mid in zip(turns, report.ids, strict=True):
                    id_of[(name, dia)] = mid
            engine.sync()
            load_s = clock()
            dia_of = {mid: dia for (_, dia), mid in id_of.items()}
            n_memories = len(id_of)
            n_questions = 0
            for name, _, questions in convs:
                for qa in questions:
                    n_questions += 1
                    text = qa["question"].replace('"', " ")
                    mark = time.perf_counter()
                    result = engine.search(f"tag:{name} {text}", limit=max(args.limit, 20))
                    latencies.append((time.perf_counter() - mark) * 1000)
                    ranked = [dia_of.get(h.memory.id, "?") for h in result.hits]
                    wanted = set(qa["evidence"])
                    for k in KS:
                        got = len(wanted & set(ranked[:k]))
                        per_cat[qa["category"]][k].append(got / len(wanted))
                    sessions = list(dict.fromkeys(session_of(d) for d in ranked))
                    wanted_s = {session_of(e) for e in wanted}
                    session_recall[qa["category"]].append(
                        len(wanted_s & set(sessions[:5])) / len(wanted_s)
                    )
            desc = describe_settings(engine)
            backend = backend_name(engine)
        finally:
            cache.save()

    rows = []
    figures: dict[str, dict[str, float]] = {}

    def row(label: str, cats: list[int]) -> None:
        n = sum(len(per_cat[c][1]) for c in cats)
        if not n:
            return
        vals = [sum(sum(per_cat[c][k]) for c in cats) / n for k in KS]
        sess = sum(sum(session_recall[c]) for c in cats) / n
        rows.append([label, n, *vals, sess])
        figures[label] = {f"R@{k}": round(v, 4) for k, v in zip(KS, vals, strict=True)}
        figures[label]["session_R@5"] = round(sess, 4)

    for cat, label in CATEGORIES.items():
        row(f"{cat} {label}", [cat])
    row("overall", list(CATEGORIES))
    print(f"LoCoMo dev: {len(convs)} conversations, {n_memories} memories, {n_questions} questions")
    print(f"settings: {desc} backend={backend}")
    print(f"load + index {load_s:.1f}s; search p50 {sorted(latencies)[len(latencies) // 2]:.1f} ms")
    print(table(["category", "n", "R@1", "R@5", "R@10", "R@20", "session R@5"], rows))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
