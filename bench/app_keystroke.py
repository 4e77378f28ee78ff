"""Keystroke to hybrid results in the app, at 100k memories (embedded default, real model).

The corpus is ``bench/latency.py``'s (real LoCoMo turns and their real embeddings, perturbed,
with their sentence rows). The app runs headless (Textual's test driver) on that data directory
with the real model and no embedding cache, as a user would open it. Each LoCoMo question is
typed into the search box one key at a time, ``--gap-ms`` apart (a quick typist); for every key
the time from the press to the moment the search screen holds that prefix's final hybrid
results is recorded (first results on the way are counted separately). The app's upkeep cannot
start an index build meanwhile (``index_threshold = 0``); with ``--optimize`` the HNSW index is
built before the app opens. The app always runs in a process of its own, as a user's does (after a
build, the script runs itself again on the built dir). ``--keep DIR`` builds into DIR and
leaves it there; a later run with the same DIR skips the build.

    /work/venv/bin/python bench/app_keystroke.py [--size 100000] [--queries 30] [--gap-ms 150]
        [--keep /tmp/ephemera-keystroke]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    add_switch_interval,
    base_parser,
    make_engine,
    percentile,
    set_switch_interval,
    settings_overrides,
    table,
    temp_dir,
)
from latency import build_corpus, corpus_inputs, turn_sentences

from ephemera_tui.engine import Engine, Settings
from ephemera_tui.engine.embedder import CachedEmbedder


async def drive(
    app: Any, queries: list[str], gap_s: float, timeout_s: float, prefix: str = ""
) -> dict[str, Any]:
    """Type every query into the app (after ``prefix``, already in the box); per key,
    seconds to the keyword and hybrid results."""
    from textual import events
    from textual.keys import _character_to_key
    from textual.widgets import Input

    first: list[float] = []
    final: list[float] = []
    late = 0
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the engine and the vector store
            engine = app.engine
            if engine is not None and engine.vector_status == "ok":
                break
            await asyncio.sleep(0.05)
        await pilot.pause(0.5)
        screen = app.screen
        box = screen.query_one("#query", Input)
        for query in queries:
            box.value = prefix
            await pilot.pause(0.3)
            for n in range(1, len(query) + 1):
                typed = prefix + query[:n]
                char = query[n - 1]
                mark = time.perf_counter()
                # A real key event, posted without waiting (pilot.press would wait for the
                # app to be idle, screen refresh included, before the clock could look).
                app.post_message(events.Key(_character_to_key(char), char))
                seen_first = False
                while True:
                    found = getattr(screen, "found", None)
                    now = time.perf_counter()
                    if found is not None and found.query == typed:
                        if not seen_first:
                            first.append(now - mark)
                            seen_first = True
                        if found.final:
                            final.append(now - mark)
                            break
                    if now - mark > timeout_s:
                        late += 1
                        break
                    await asyncio.sleep(0.002)  # the UI loop's own, so not too often
                rest = gap_s - (time.perf_counter() - mark)
                if rest > 0:
                    await asyncio.sleep(rest)
    return {"first": first, "final": final, "late": late}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--gap-ms", type=float, default=150.0)
    parser.add_argument("--optimize", action="store_true", help="build the HNSW index first")
    parser.add_argument(
        "--no-settle-heap",
        action="store_true",
        help="leave start-up's objects in the collector's full passes (the app freezes them)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="build into (or reuse) this dir")
    parser.add_argument(
        "--prefix", default="", help='already in the box before each question, e.g. "tag:work "'
    )
    add_switch_interval(parser)
    args = parser.parse_args()
    set_switch_interval(args)
    overrides = settings_overrides(args.set) | {"index_threshold": 0, "service": "off"}
    precision = Settings(**overrides).query_precision
    turns, questions, turn_vectors, doc_embedder, model = corpus_inputs(
        args.data, args.no_cache, precision
    )
    queries = [questions[(i * 37) % len(questions)] for i in range(args.queries)]
    if args.keep is None or not (args.keep / "ephemera.db").exists():
        with contextlib.ExitStack() as stack:
            data = args.keep or Path(stack.enter_context(temp_dir("keystroke")))
            engine = make_engine(data, overrides, doc_embedder)
            turn_rows = turn_sentences(turns, args.no_cache)  # sentence rows, as stored
            build_s = build_corpus(engine, turns, turn_vectors, args.size, turn_rows=turn_rows)
            if args.optimize:
                from ephemera_tui.engine.vectors.index import build_index

                build_index(engine)
            engine.close()
            print(f"{args.size} memories built in {build_s:.0f}s", flush=True)
            # The app opens in a process of its own, as a user's does: the build's leftovers
            # would otherwise sit in this one's heap and slow its collections.
            again = [a for a in sys.argv if a != "--optimize"] + ["--keep", str(data)]
            return subprocess.run([sys.executable, *again], check=False).returncode
    data = args.keep
    settings = Settings(data_dir=data, **overrides)
    from ephemera_tui.app.app import EphemeraApp

    def factory(chosen: Settings) -> Engine:
        return Engine(chosen, embedder=CachedEmbedder(model, max_entries=0))

    app = EphemeraApp(
        settings, engine_factory=factory, blink=False, settle_heap=not args.no_settle_heap
    )
    got = asyncio.run(drive(app, queries, args.gap_ms / 1000, 2.0, args.prefix))
    load = os.getloadavg()[0]
    rows = []
    for label, values in (
        ("first results", got["first"]),
        ("hybrid results", got["final"]),
    ):
        ms = [v * 1000 for v in values]
        rows.append([label, len(ms), percentile(ms, 50), percentile(ms, 95), max(ms), load])
    print(
        f"\n{args.size} memories in {data}, {len(queries)} questions typed "
        f"{args.gap_ms:g} ms a key{f' after {args.prefix!r}' if args.prefix else ''}; "
        f"keys whose hybrid results took over 2 s: {got['late']}"
    )
    print(table(["keystroke to", "keys", "p50 ms", "p95 ms", "max ms", "load1"], rows))
    if args.json:
        print(json.dumps({"rows": rows, "late": got["late"], "size": args.size}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
