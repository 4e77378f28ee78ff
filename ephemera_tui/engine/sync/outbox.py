"""Draining the vector outbox: bring each queued memory's vector in line with SQL.

Every write leaves an outbox row in its own transaction (:mod:`..store.sql`); right after the
commit the engine pushes those rows here if this process holds the vector store, and the
upkeep worker (or ``ephemera sync``) drains whatever is left. A failed vector write defers its
row with a back-off; it is never lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..domain import Memory, SyncReport
from ..errors import EmbeddingError, VectorStoreError
from ..redact import redact
from ..vectors.base import VectorPoint
from ..vectors.rows import embed_rows

if TYPE_CHECKING:
    from ..embedder import CachedEmbedder
    from ..observability.recorder import MetricsRecorder
    from ..store import OutboxItem, SqlStore
    from ..vectors.manager import VectorManager

log = logging.getLogger(__name__)


def embed_text(memory: Memory) -> str:
    """The text embedded for a memory (kept in one place so benchmarks can vary it)."""
    return memory.content


class OutboxDrain:
    """Applies outbox rows to the active vector collection (one drain at a time)."""

    def __init__(
        self,
        store: SqlStore,
        vectors: VectorManager,
        embedder: Callable[[], CachedEmbedder],
        metrics: MetricsRecorder,
    ) -> None:
        self.store = store
        self.vectors = vectors
        self._embedder = embedder
        self.metrics = metrics
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def push(self, ids: Sequence[int]) -> None:
        """Index freshly written memories now if the vector store is ours; else leave them
        queued for whoever holds it."""
        try:
            if self.vectors.get() is None:
                return
            items = self.store.outbox_for(ids)
            if items:
                self.apply(items)
        except Exception as exc:  # noqa: BLE001 - the write is committed: it must be reported
            # as saved, its vector stays queued for whoever drains the outbox next
            reason = redact(str(exc) or type(exc).__name__, self.vectors.settings.qdrant_url)
            log.warning("vector write of %d memories left queued: %s", len(ids), reason)
            self.last_error = reason

    def drain(self, batch_size: int = 256, max_batches: int | None = None) -> SyncReport:
        """Drain the outbox into the vector store (``ephemera sync`` and the worker)."""
        report = SyncReport()
        with self._lock:
            if self.vectors.active() is None:
                report.error = self.vectors.status
                report.remaining = self.store.pending_count()
                return report
            batches = 0
            while max_batches is None or batches < max_batches:
                items = self.store.due_outbox(batch_size)
                if not items:
                    break
                done = self.apply(items)
                batches += 1
                report.upserted += done.upserted
                report.deleted += done.deleted
                report.failed += done.failed
                if done.error:
                    report.error = done.error
                    break
            report.remaining = self.store.pending_count()
        return report

    def apply(self, items: Sequence[OutboxItem]) -> SyncReport:
        """Bring these memories' vectors in line with SQL; clear or defer their outbox rows."""
        report = SyncReport()
        vectors = self.vectors.active()  # the outbox drains into the active collection only
        if vectors is None:
            report.error = self.vectors.status
            return report
        try:
            self.vectors.ensure_space()  # a full disk would kill us inside the mapped files
            current = self.store.get_many([i.memory_id for i in items])
            to_upsert = [current[i.memory_id] for i in items if i.memory_id in current]
            to_delete = [i.memory_id for i in items if i.memory_id not in current]
            if to_upsert:
                embedded = embed_rows(self._embedder().embed, [embed_text(m) for m in to_upsert])
                vectors.upsert(
                    [
                        VectorPoint(m.id, embedded[n], self.vectors.payload(m))
                        for n, m in enumerate(to_upsert)
                    ]
                )
            vectors.delete(to_delete)
            self.store.clear_outbox(items)
            report.upserted, report.deleted = len(to_upsert), len(to_delete)
            self.last_error = None
        except (VectorStoreError, EmbeddingError, OSError) as exc:
            reason = redact(str(exc) or type(exc).__name__, self.vectors.settings.qdrant_url)
            log.warning("vector write of %d memories deferred: %s", len(items), reason)
            self.metrics.error("vector_upsert")
            report.failed = len(items)
            report.error = reason
            self.last_error = reason
            self.store.defer_outbox(items, reason)
        return report
