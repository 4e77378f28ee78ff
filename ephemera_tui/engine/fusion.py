"""Fusing the semantic and keyword rankings into one, keeping each side's score and rank."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def in_background(func: Callable[[], T]) -> Future[T]:
    """Run one side of a search on a small shared thread pool (SQLite, ONNX Runtime and
    qdrant-edge all release the GIL, so the two sides overlap on a multi-core machine)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ephemera-search")
    return _pool.submit(func)


@dataclass(frozen=True, slots=True)
class Fused:
    id: int
    score: float
    semantic_score: float | None
    semantic_rank: int | None
    keyword_score: float | None
    keyword_rank: int | None


def fuse(
    semantic: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    semantic_weight: float = 0.5,
    method: str = "rrf",
    rrf_k: int = 60,
    limit: int | None = None,
) -> list[Fused]:
    """Combine two best-first rankings; the best ``limit`` (all without one).

    ``rrf``: weighted reciprocal rank, ``w/(k+rank)``. ``score``: weighted sum of scores scaled
    to 0..1 within each list (min-max), so a clear winner on one side keeps its lead.
    Ranks are 1-based. Ties keep the semantic side's order, then the keyword side's.
    """
    ws, wk = semantic_weight, 1.0 - semantic_weight
    # Scores first, records only for the hits kept: this runs on every search, with a few
    # hundred candidates a side and 20 hits wanted.
    if method == "rrf":
        sem_parts = [ws / (rrf_k + rank) for rank in range(1, len(semantic) + 1)]
        kw_parts = [wk / (rrf_k + rank) for rank in range(1, len(keyword) + 1)]
    else:
        sem_parts = [ws * s for s in _minmax([s for _, s in semantic])]
        kw_parts = [wk * s for s in _minmax([s for _, s in keyword])]
    totals: dict[int, float] = {}
    for (pid, _), part in zip(semantic, sem_parts, strict=True):
        totals[pid] = part
    for (pid, _), part in zip(keyword, kw_parts, strict=True):
        totals[pid] = totals.get(pid, 0.0) + part
    best = sorted(totals, key=totals.__getitem__, reverse=True)  # stable: ties keep order
    if limit is not None:
        best = best[:limit]
    sem = {pid: (score, rank) for rank, (pid, score) in enumerate(semantic, start=1)}
    kw = {pid: (score, rank) for rank, (pid, score) in enumerate(keyword, start=1)}
    none: tuple[None, None] = (None, None)
    return [Fused(pid, totals[pid], *sem.get(pid, none), *kw.get(pid, none)) for pid in best]


def _minmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low < 1e-12:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]
