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
) -> list[Fused]:
    """Combine two best-first rankings.

    ``rrf``: weighted reciprocal rank, ``w/(k+rank)``. ``score``: weighted sum of scores scaled
    to 0..1 within each list (min-max), so a clear winner on one side keeps its lead.
    Ranks are 1-based. Ties keep the semantic side's order, then the keyword side's.
    """
    sem = {pid: (rank, score) for rank, (pid, score) in enumerate(semantic, start=1)}
    kw = {pid: (rank, score) for rank, (pid, score) in enumerate(keyword, start=1)}
    ws, wk = semantic_weight, 1.0 - semantic_weight
    sem_norm = _minmax([s for _, s in semantic])
    kw_norm = _minmax([s for _, s in keyword])
    out: list[Fused] = []
    for pid in dict.fromkeys([p for p, _ in semantic] + [p for p, _ in keyword]):
        s_rank, s_score = sem.get(pid, (None, None))
        k_rank, k_score = kw.get(pid, (None, None))
        if method == "rrf":
            total = (ws / (rrf_k + s_rank) if s_rank else 0.0) + (
                wk / (rrf_k + k_rank) if k_rank else 0.0
            )
        else:
            total = (ws * sem_norm[s_rank - 1] if s_rank else 0.0) + (
                wk * kw_norm[k_rank - 1] if k_rank else 0.0
            )
        out.append(Fused(pid, total, s_score, s_rank, k_score, k_rank))
    out.sort(key=lambda f: -f.score)
    return out


def _minmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low < 1e-12:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]
