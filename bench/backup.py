"""A scheduled backup at 100k memories while the app keeps searching, then its restore.

Builds the ``latency.py`` corpus (real LoCoMo embeddings, perturbed), reopens it with the real
model as the app would, and runs ``create_backup`` on a thread (as the upkeep worker does)
while the main thread keeps searching (hybrid with filters, LoCoMo questions embedded at
search time). Prints how long the backup took and how big the set is, search latency before
and during it, how many searches fell back to keyword only, and the time to restore and
verify the set into a scratch store (``verify_backup``).

    /work/venv/bin/python bench/backup.py [--size 100000]
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from _common import base_parser, percentile, settings_overrides, table, temp_dir
from latency import app_engine_on_corpus, corpus_inputs, dir_mb, filtered

from ephemera_tui.engine.backup import create_backup, verify_backup
from ephemera_tui.engine.embedder import CachedEmbedder


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    inputs = corpus_inputs(args.data, args.no_cache)
    questions, model = inputs[1], inputs[4]
    with temp_dir("backup") as tmp:
        data = Path(tmp)
        engine = app_engine_on_corpus(
            data / "data", settings_overrides(args.set), args.size, inputs
        )

        def search(n: int) -> tuple[float, str]:
            mark = time.perf_counter()
            result = engine.search(filtered(questions[n % len(questions)], n), limit=20)
            return (time.perf_counter() - mark) * 1000, result.mode

        for n in range(10):
            search(n)
        before = [search(n)[0] for n in range(200)]
        made: list = []
        thread = threading.Thread(
            target=lambda: made.append(create_backup(engine, data / "backups")), daemon=True
        )
        started = time.perf_counter()
        thread.start()
        during: list[tuple[float, str]] = []
        n = 200
        while thread.is_alive():
            during.append(search(n))
            n += 1
        backup_s = time.perf_counter() - started
        engine.close()
        if not made:
            raise SystemExit("the backup failed")
        set_dir = made[0].path
        set_mb = dir_mb(set_dir)
        mark = time.perf_counter()
        report = verify_backup(set_dir, embedder=CachedEmbedder(model, max_entries=0))
        verify_s = time.perf_counter() - mark
    times = [ms for ms, _ in during]
    keyword_only = sum(1 for _, mode in during if mode != "hybrid")
    print(
        table(
            ["searches (hybrid + filter)", "n", "p50 ms", "p95 ms", "max ms", "keyword only"],
            [
                [
                    "before the backup",
                    len(before),
                    percentile(before, 50),
                    percentile(before, 95),
                    max(before),
                    "-",
                ],
                [
                    "during the backup",
                    len(times),
                    percentile(times, 50),
                    percentile(times, 95),
                    max(times),
                    keyword_only,
                ],
            ],
        )
    )
    kind = made[0].manifest["vectors"]["kind"]
    print(
        f"\nbackup of {args.size:,} memories: {backup_s:.1f} s, set {set_mb:.0f} MB "
        f"(vectors: {kind}); restore + verify into a scratch store: {verify_s:.1f} s, "
        f"ok={report.ok}, vectors loaded {report.restore.vectors_loaded:,}, "
        f"re-embedded {report.restore.reembedded:,}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
