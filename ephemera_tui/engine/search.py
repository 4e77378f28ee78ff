"""The search path: parse → semantic (Qdrant, filtered) and keyword (SQL, filtered) side by
side → fuse → enrich from SQL in one query → explain (each hit keeps both sides' scores)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .domain import Hit, SearchResult
from .errors import EmbeddingError, VectorStoreError
from .fusion import fuse, in_background
from .query import ParsedQuery
from .store import STOPWORDS

T = TypeVar("T")

if TYPE_CHECKING:
    from .config import Settings
    from .embedder import CachedEmbedder
    from .observability.recorder import MetricsRecorder
    from .store import SqlStore
    from .vectors.manager import VectorManager


class HybridSearch:
    """Answers one query from both sides, or from keyword alone (and says why)."""

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        vectors: VectorManager,
        embedder: Callable[[], CachedEmbedder],
        parse: Callable[[str], ParsedQuery],
        metrics: MetricsRecorder,
    ) -> None:
        self.settings = settings
        self.store = store
        self.vectors = vectors
        self._embedder = embedder
        self._parse = parse
        self.metrics = metrics
        self._recent = _Recent()

    def forget(self) -> None:
        """Drop the short-lived memo of parses and keyword answers (after a local write)."""
        self._recent.clear()

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Hybrid search. Answers from keyword alone, and says so, when the vector side is
        unavailable or behind. ``keyword_only`` asks for the keyword side alone (fast first
        results while typing); its mode is then ``keyword`` without a notice. A filter with
        a bad value is left out and named in the notices; the rest of the query runs."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        parsed = self._recent.get(("parse", raw))
        if parsed is None:
            parsed = self._recent.put(("parse", raw), self._parse(raw))
        timings["parse"] = _ms(started)
        flt = parsed.filter
        notices: list[str] = list(parsed.problems)
        if not parsed.has_text:
            listed = self.store.browse(flt, limit=limit)
            timings["total"] = _ms(started)
            hits = tuple(Hit(m, 0.0) for m in listed)
            return SearchResult(raw, hits, tuple(notices), mode="browse", timings_ms=timings)
        candidates = max(self.settings.search_candidates, limit * 3)
        terms = [t for t in parsed.terms if t not in STOPWORDS] or list(parsed.terms)

        def keyword_side() -> list[tuple[int, float]]:
            keyword_started = time.perf_counter()
            key = ("keyword", tuple(terms), flt, candidates)
            found: list[tuple[int, float]] | None = self._recent.get(key)
            if found is None:  # the app's keyword-only pass and its hybrid pass share this
                found = self._recent.put(
                    key,
                    self.store.keyword_search(
                        terms, flt, candidates, budget=self.settings.keyword_budget
                    ),
                )
            timings["keyword"] = _ms(keyword_started)
            return found

        def keyword_and_pending() -> tuple[list[tuple[int, float]], int]:
            return keyword_side(), self.store.pending_count()

        semantic: list[tuple[int, float]] = []
        vectors = None if keyword_only else self.vectors.get()
        # With a vector side, the keyword side (and the outbox count, which says whether the
        # payload filter can be trusted) runs meanwhile on a worker thread.
        background = in_background(keyword_and_pending) if vectors is not None else None
        keyword = keyword_side() if background is None else []
        pending = 0
        if vectors is not None:
            try:
                mark = time.perf_counter()
                query_vector = self._embedder().embed_query(parsed.text)
                timings["embed"] = _ms(mark)
                mark = time.perf_counter()
                semantic = vectors.search(query_vector, candidates, flt.payload_part)
                timings["vector"] = _ms(mark)
            except (VectorStoreError, EmbeddingError) as exc:
                self.metrics.error("vector_search")
                notices.append(f"keyword results only: {exc}")
        elif not keyword_only:
            notices.append(f"keyword results only: {self.vectors.status}")
        if background is not None:
            keyword, pending = background.result()
        # The payload filter is exact once the outbox is drained; phrases, and payloads of
        # memories still waiting there, are checked in SQL.
        if semantic and (flt.needs_sql_check or pending):
            allowed = self.store.filter_ids([pid for pid, _ in semantic], flt)
            semantic = [(pid, s) for pid, s in semantic if pid in allowed]
        if pending and vectors is not None:
            noun = "memory is" if pending == 1 else "memories are"
            notices.append(f"{pending} {noun} not yet searchable by meaning")
        mark = time.perf_counter()
        fused = fuse(
            semantic,
            keyword,
            semantic_weight=self.settings.semantic_weight,
            method=self.settings.fusion,
            rrf_k=self.settings.rrf_k,
            limit=limit,
        )
        memories = self.store.get_many([f.id for f in fused])
        timings["enrich"] = _ms(mark)
        hits = tuple(
            Hit(
                memories[f.id],
                f.score,
                f.semantic_score,
                f.semantic_rank,
                f.keyword_score,
                f.keyword_rank,
                tuple(terms),
            )
            for f in fused
            if f.id in memories
        )
        timings["total"] = _ms(started)
        mode = "hybrid" if vectors is not None else "keyword"
        return SearchResult(raw, hits, tuple(notices), mode, timings)


class _Recent:
    """A tiny memo for one keystroke's two passes: at most :attr:`SIZE` entries, each kept
    :attr:`TTL` seconds (writes from other processes are seen after that at the latest)."""

    SIZE = 16
    TTL = 1.0

    def __init__(self) -> None:
        self._items: dict[object, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None or time.monotonic() - found[0] > self.TTL:
                return None
            return found[1]

    def put(self, key: object, value: T) -> T:
        with self._lock:
            if len(self._items) >= self.SIZE:
                self._items.pop(next(iter(self._items)))
            self._items[key] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
