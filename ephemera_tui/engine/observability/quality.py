"""Vector index quality: recall@10 of the HNSW index against exact search, sampled."""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import Engine

from .recorder import INDEX_RECALL, MetricsRecorder, quantile, read_metrics

# ---------------------------------------------------------------------------- index quality


@dataclass(frozen=True, slots=True)
class IndexQuality:
    """Recall@k of the vector index against exact search over ``sample`` stored vectors."""

    recall: float | None
    sample: int
    k: int
    approx_ms_p50: float
    exact_ms_p50: float
    measured_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_index_quality(
    engine: Engine, sample: int = 50, k: int = 10, seed: int | None = None
) -> IndexQuality | None:
    """Search the index with ``sample`` stored vectors (chosen at random) and compare its top
    ``k`` with exact search: the mean overlap is recall@k. Recorded as the shared gauge
    ``index.recall_at_10``. None while the vector store is unavailable.

    Meant for the background worker (a few hundred searches: well under a second at 100k
    points on the embedded store).
    """
    from sqlalchemy import func, select

    from ..store import FRAGMENTS

    vectors = engine.vectors()
    if vectors is None:
        return None
    store = engine.store
    order = func.rand() if store.is_mysql else func.random()
    with store.read() as conn:
        ids = [
            int(r[0])
            for r in conn.execute(select(FRAGMENTS.c.id).order_by(order).limit(sample * 2))
        ]
    rng = random.Random(seed)
    rng.shuffle(ids)
    stored = vectors.vectors(ids)
    chosen = [stored[i] for i in ids if i in stored][:sample]
    approx_times: list[float] = []
    exact_times: list[float] = []
    recalls: list[float] = []
    for vector in chosen:
        t0 = time.perf_counter()
        approx = vectors.search(vector, k)
        t1 = time.perf_counter()
        exact = vectors.search(vector, k, exact=True)
        t2 = time.perf_counter()
        approx_times.append((t1 - t0) * 1000)
        exact_times.append((t2 - t1) * 1000)
        if exact:
            recalls.append(_recall(approx, exact))
    recall = round(sum(recalls) / len(recalls), 4) if recalls else None
    result = IndexQuality(
        recall=recall,
        sample=len(recalls),
        k=k,
        approx_ms_p50=round(quantile(sorted(approx_times), 0.5), 3),
        exact_ms_p50=round(quantile(sorted(exact_times), 0.5), 3),
        measured_at=time.time(),
    )
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is not None and recall is not None:
        recorder.gauge(INDEX_RECALL, recall, shared=True)
        recorder.gauge("index.recall_sample", len(recalls), shared=True)
        recorder.gauge("index.exact_ms_p50", result.exact_ms_p50, shared=True)
        recorder.gauge("index.approx_ms_p50", result.approx_ms_p50, shared=True)
        for ms in approx_times:
            recorder.observe("index.approx", ms)
        for ms in exact_times:
            recorder.observe("index.exact", ms)
        recorder.flush()
    return result


def maybe_measure_index_quality(
    engine: Engine, every_seconds: float = 3600.0, sample: int = 50
) -> IndexQuality | None:
    """Measure recall@10 if the last measurement (by any process) is older than
    ``every_seconds``: what the background worker calls after each run."""
    recorder: MetricsRecorder | None = getattr(engine, "metrics", None)
    if recorder is not None and recorder.path is not None:
        data = read_metrics(recorder.path, series=0, limit=1)
        last = data.gauges.get(INDEX_RECALL, {}).get(0)
        if last is not None and time.time() - last[1] < every_seconds:
            return None
    return measure_index_quality(engine, sample=sample)


def sample_after_run(
    engine: Engine, every_seconds: float = 3600.0, release: bool = False
) -> IndexQuality | None:
    """What the background worker calls after each run: measure recall@10 when due (never
    raises), then close the embedded vector store again if ``release`` (other processes
    take turns with it)."""
    try:
        return maybe_measure_index_quality(engine, every_seconds)
    except Exception:  # noqa: BLE001 - a sampling failure must not stop the worker
        engine.metrics.error("index_quality")
        return None
    finally:
        if release:
            with contextlib.suppress(Exception):
                engine.release_vectors()


def _recall(approx: list[tuple[int, float]], exact: list[tuple[int, float]]) -> float:
    """The share of the exact top k that the index found, counting ties as found: a hit
    scoring as high as the exact k-th is as good as any of the points tied with it (which of
    several tied points comes back depends on the search path, not on the index's quality)."""
    ids = {pid for pid, _ in exact}
    kth = exact[-1][1] - 1e-6
    found = sum(1 for pid, score in approx if pid in ids or score >= kth)
    return min(found, len(exact)) / len(exact)
