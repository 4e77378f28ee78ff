"""The Engine: the one object the CLI and the app call. Plain domain objects in and out.

It owns nothing itself; it wires the parts that do, each in its own package:
:class:`~.store.SqlStore` (all SQL), :class:`~.vectors.VectorManager` (the vector side's
lifecycle), :class:`~.sync.outbox.OutboxDrain` (vectors brought in step with SQL),
:class:`~.search.HybridSearch` (the search path) and the metrics recorder. Optional parts
(the MeiliSearch migration's router and dual writer) are attached by the composition root,
:func:`~.compose.open_engine`, through :meth:`Engine.route_searches` and
:meth:`Engine.observe_writes`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .config import Settings
from .domain import (
    CacheStats,
    Change,
    CheckReport,
    Draft,
    EngineStats,
    Hit,
    ImportReport,
    Memory,
    SearchResult,
    SyncReport,
)
from .embedder import CachedEmbedder, load_embedder
from .errors import EphemeraError, NotFoundError, VectorStoreError
from .filters import SearchFilter
from .observability.instrument import instrumented, open_metrics
from .query import ParsedQuery, parse_query
from .search import HybridSearch
from .store import MetaKey, SqlStore, describe_url
from .sync.outbox import OutboxDrain, embed_text
from .vectors import VectorManager, VectorStore

if TYPE_CHECKING:
    from .vectors.reembed import ReembedReport

__all__ = ["Engine", "ImportReport", "SearchRouter", "SyncReport", "WriteObserver", "embed_text"]

WriteObserver = Callable[[str, Memory], None]
"""Called as ``observer(op, memory)`` after a write (op: add, update or delete)."""


class SearchRouter(Protocol):
    """Something that answers :meth:`Engine.search` in the engine's place (same signature)."""

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Answer one search."""
        ...

    def status(self) -> str | None:
        """``ok`` when the router answers by meaning on this engine's behalf (a resident
        engine holding the vectors), else None (the engine's own status applies)."""
        ...


class Engine:
    """Storage, embeddings, vectors and search behind one object.

    The SQL store opens at once; the embedding model and the vector store open on first use
    (they are slow to import), and the vector store is retried while another process holds it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: CachedEmbedder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # a journal is private
        self.store = SqlStore(settings.resolved_database_url, clock=clock)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._observers: list[WriteObserver] = []
        self._router: SearchRouter | None = None
        self.vector_manager = VectorManager(
            settings,
            self.store,
            model_name=lambda: self.model_name,
            embedder=lambda: self.embedder,
            clock=clock,
        )
        self.metrics = open_metrics(self)  # latency, errors, cache, pool, memory -> metrics.db
        self.outbox = OutboxDrain(
            self.store, self.vector_manager, lambda: self.embedder, self.metrics
        )
        self.searcher = HybridSearch(
            settings,
            self.store,
            self.vector_manager,
            lambda: self.embedder,
            self.parse,
            self.metrics,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def embedder(self) -> CachedEmbedder:
        """The embedding model, loaded on first use."""
        with self._embedder_lock:
            if self._embedder is None:
                if self.settings.embedding_url:
                    from .remote_embedder import RemoteEmbedder

                    remote = RemoteEmbedder(
                        self.settings.embedding_url,
                        self.settings.embedding_model,
                        self.settings.embedding_api_key,
                    )
                    self._embedder = CachedEmbedder(remote, self.settings.embedding_cache_size)
                else:
                    self._embedder = load_embedder(
                        self.settings.embedding_model,
                        self.settings.model_cache_dir,
                        self.settings.embedding_cache_size,
                        int8_queries=self.settings.query_precision == "int8",
                    )
            return self._embedder

    @property
    def loaded_embedder(self) -> CachedEmbedder | None:
        """The embedding model if it is loaded already (metrics must not load it)."""
        return self._embedder

    @property
    def model_name(self) -> str:
        """The configured model's name, known without loading it."""
        return self._embedder.name if self._embedder is not None else self.settings.embedding_model

    def prepare_interactive(self) -> None:
        """Load the model and ready it for search-as-you-type: a one-thread session for
        queries where the embedder has one (the app calls this once it has painted)."""
        prepare = getattr(self.embedder.inner, "prepare_queries", None)
        if prepare is not None:
            prepare()
        self.embedder.embed_query("warm up")

    def vectors(self) -> VectorStore | None:
        """The vector store, or None while it is unavailable (reason in :attr:`vector_status`)."""
        return self.vector_manager.get()

    @property
    def vector_status(self) -> str:
        """``ok`` while search by meaning works (here, or through a router that answers for
        this engine), else why not."""
        if self._router is not None and self._router.status() == "ok":
            return "ok"
        return self.vector_manager.status

    def vector_collection(self) -> str:
        """The active vector collection (switched by a re-embed; see docs/operations.md)."""
        return self.vector_manager.collection()

    @property
    def vectors_path(self) -> Path:
        """The active embedded shard's directory (``settings.vectors_path`` until a re-embed)."""
        return self.vector_manager.shard_path()

    def release_vectors(self) -> None:
        """Close the vector store so another process can take it (and retry later)."""
        self.vector_manager.release()

    def close(self) -> None:
        """Release the vector store, flush metrics, close the SQL pool."""
        try:
            self.vector_manager.close()
        finally:
            self.metrics.close()
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ wiring

    def observe_writes(self, observer: WriteObserver) -> None:
        """Call ``observer(op, memory)`` after every add, update and delete."""
        self._observers.append(observer)

    def stop_observing(self, observer: WriteObserver) -> None:
        """Undo :meth:`observe_writes` (a no-op for an observer not attached)."""
        self._observers = [o for o in self._observers if o is not observer]

    @property
    def write_observers(self) -> tuple[WriteObserver, ...]:
        """The observers attached with :meth:`observe_writes`."""
        return tuple(self._observers)

    @property
    def search_router(self) -> SearchRouter | None:
        """The router attached with :meth:`route_searches`, if any."""
        return self._router

    def route_searches(self, router: SearchRouter | None) -> None:
        """Send :meth:`search` through ``router`` (None: answer locally again)."""
        self._router = router

    def _notify(self, op: str, memory: Memory) -> None:
        """Tell write observers (add/update/delete) after the write; they never fail it."""
        self.searcher.forget()
        for observer in self._observers:
            try:
                observer(op, memory)
            except Exception:  # noqa: BLE001 - an observer never fails the write
                import logging

                logging.getLogger(__name__).exception("write observer failed on %s", op)

    # ------------------------------------------------------------------ writes

    @instrumented("add")
    def add(self, draft: Draft) -> Memory:
        """Record a memory: SQL + outbox in one transaction, then index it if the store is free."""
        memory = self.store.insert([draft])[0]
        self.outbox.push([memory.id])
        self._notify("add", memory)
        return memory

    @instrumented("update")
    def update(
        self, memory_id: int, draft: Draft, *, expected_revision: int | None = None
    ) -> Memory:
        """Replace a memory's fields. With ``expected_revision`` (the revision the edit started
        from) a memory changed meanwhile by anyone is refused with ConflictError."""
        memory = self.store.update(memory_id, draft, expected_revision)
        self.outbox.push([memory_id])
        self._notify("update", memory)
        return memory

    @instrumented("delete")
    def delete(self, memory_id: int, *, expected_revision: int | None = None) -> Memory:
        """Delete a memory (and the links pointing at it); ``expected_revision`` as for
        :meth:`update`."""
        memory = self.store.delete(memory_id, expected_revision)
        self.outbox.push([memory_id])
        self._notify("delete", memory)
        return memory

    def link(self, source_id: int, target_id: int) -> Memory:
        """Link two memories (stored on the first; shown both ways)."""
        if source_id == target_id:
            raise EphemeraError("a memory cannot be linked to itself")
        memory = self.store.get(source_id)
        self.store.get(target_id)
        if target_id in memory.associations:
            return memory
        return self.store.set_associations(source_id, [*memory.associations, target_id])

    def unlink(self, first_id: int, second_id: int) -> None:
        """Remove a link in whichever direction it was stored."""
        for a, b in ((first_id, second_id), (second_id, first_id)):
            with contextlib.suppress(NotFoundError):
                memory = self.store.get(a)
                if b in memory.associations:
                    self.store.set_associations(a, [x for x in memory.associations if x != b])

    @instrumented("import")
    def import_drafts(
        self,
        rows: Iterable[tuple[Draft, int | None]],
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Bulk import: batches of SQL inserts, then batch embedding. Re-running adds nothing.

        Rows with an ``id`` that exists are updated when they differ; rows without an id are
        skipped when a memory with the same content, time and source exists.
        """
        report = ImportReport()
        batch: list[tuple[Draft, int | None]] = []

        def flush() -> None:
            self._import_batch(batch, report)
            if progress:
                progress(len(batch))
            batch.clear()

        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        self.searcher.forget()
        return report

    def _import_batch(self, batch: list[tuple[Draft, int | None]], report: ImportReport) -> None:
        drafts = [d for d, _ in batch]
        duplicates = self.store.find_duplicates(drafts)
        explicit = [mid for _, mid in batch if mid is not None]
        existing = self.store.get_many(explicit) if explicit else {}
        new_drafts: list[Draft] = []
        new_ids: list[int | None] = []
        seen_ids: set[int] = set()
        for index, (draft, mid) in enumerate(batch):
            if mid is not None and mid in seen_ids:
                report.skip("duplicate id in file")
                continue
            if mid is not None:
                seen_ids.add(mid)
            if mid is not None and mid in existing:
                if Draft.from_memory(existing[mid]) == draft:
                    report.skip("already present")
                else:
                    self.store.update(mid, draft)
                    report.updated += 1
                    report.ids.append(mid)
                continue
            if mid is None and index in duplicates:
                report.skip("already present")
                continue
            new_drafts.append(draft)
            new_ids.append(mid)
        created = self.store.insert(new_drafts, new_ids)
        report.imported += len(created)
        report.ids.extend(m.id for m in created)
        self.outbox.push([m.id for m in created] + [m for m in explicit if m in existing])

    # ------------------------------------------------------------------ sync

    @instrumented("sync")
    def sync(self, batch_size: int = 256, max_batches: int | None = None) -> SyncReport:
        """Drain the outbox into the vector store (what ``ephemera sync`` and the worker run)."""
        return self.outbox.drain(batch_size, max_batches)

    @instrumented("check")
    def check(self, repair: bool = False, batch_size: int = 1000) -> CheckReport:
        """Cross-check SQL against the vector store: missing, orphaned, stale, wrong model.

        Memories still waiting in the outbox are counted as pending, not as problems.
        With ``repair`` the problems are queued and the outbox drained.
        """
        from .sync.reconcile import full_check

        report = full_check(self, repair=repair, batch_size=batch_size)
        if report.vector_status == "ok":
            self.store.set_meta(MetaKey.LAST_CHECK, str(int(self.clock())))
        return report

    def reembed(
        self,
        progress: Callable[[int], None] | None = None,
        *,
        embedder: CachedEmbedder | None = None,
        batch_size: int = 256,
        max_batches: int | None = None,
    ) -> ReembedReport:
        """Re-embed every memory into a new collection with the configured model (or
        ``embedder``) while the old one keeps serving, then switch; resumes when interrupted.
        See :mod:`ephemera_tui.engine.vectors.reembed`."""
        from .vectors.reembed import reembed

        return reembed(
            self,
            embedder or self.embedder,
            progress=progress,
            batch_size=batch_size,
            max_batches=max_batches,
        )

    # ------------------------------------------------------------------ reads

    def get(self, memory_id: int) -> Memory:
        return self.store.get(memory_id)

    def get_many(self, ids: Sequence[int]) -> dict[int, Memory]:
        return self.store.get_many(ids)

    def count(self, flt: SearchFilter | None = None) -> int:
        return self.store.count(flt)

    def changes(self, after_seq: int, limit: int = 500) -> list[Change]:
        """What was written since feed position ``after_seq``, oldest first (by any process)."""
        return self.store.changes(after_seq, limit)

    def latest_seq(self) -> int:
        """The change feed's newest position (cheap: one indexed read)."""
        return self.store.latest_seq()

    def pending(self) -> int:
        return self.store.pending_count()

    def parse(self, raw: str) -> ParsedQuery:
        return parse_query(raw, self.clock())

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Search as configured: through the attached router (the MeiliSearch migration's
        read switching) if any, else :meth:`local_search`."""
        if self._router is not None:
            return self._router.search(raw, limit, keyword_only=keyword_only)
        return self.local_search(raw, limit, keyword_only=keyword_only)

    @instrumented("search")
    def local_search(
        self, raw: str, limit: int = 20, *, keyword_only: bool = False
    ) -> SearchResult:
        """Hybrid search in this engine (see :class:`~.search.HybridSearch`)."""
        return self.searcher.search(raw, limit, keyword_only=keyword_only)

    def similar(self, memory_id: int, limit: int = 5) -> list[Hit]:
        """Memories closest in meaning to one memory (the graph's suggestions)."""
        memory = self.store.get(memory_id)
        vectors = self.vectors()
        if vectors is None:
            return []
        vector = vectors.vectors([memory_id]).get(memory_id)
        if vector is None:
            vector = self.embedder.embed([embed_text(memory)])[0]
        found = vectors.search(vector, limit + 1, SearchFilter(exclude_ids=(memory_id,)))
        memories = self.store.get_many([pid for pid, _ in found])
        return [
            Hit(memories[pid], score, semantic_score=score, semantic_rank=rank)
            for rank, (pid, score) in enumerate(found, start=1)
            if pid in memories
        ][:limit]

    def neighbours(self, memory_id: int) -> tuple[list[Memory], list[Memory]]:
        """(memories this one links to, memories linking to it)."""
        memory = self.store.get(memory_id)
        incoming = [i for i in self.store.linked_to(memory_id) if i not in memory.associations]
        found = self.store.get_many([*memory.associations, *incoming])
        return (
            [found[i] for i in memory.associations if i in found],
            [found[i] for i in incoming if i in found],
        )

    def browse(
        self, flt: SearchFilter | None = None, limit: int = 50, offset: int = 0
    ) -> list[Memory]:
        return self.store.browse(flt, limit=limit, offset=offset)

    def position_of(self, when: int, flt: SearchFilter | None = None) -> int:
        """Index (newest first) of the first memory at or before ``when``."""
        return self.store.position_before(when + 1, flt)

    def activity(self, unit: str = "day", flt: SearchFilter | None = None) -> list[tuple[int, int]]:
        """Memories per local day, week (from Monday) or month: ``[(bucket start, count)]``."""
        offset = int((datetime.now().astimezone().utcoffset() or timedelta()).total_seconds())
        days = self.store.activity_days(offset, flt)
        buckets: dict[int, int] = {}
        for day_start, count in days:
            moment = datetime.fromtimestamp(day_start)
            if unit == "week":
                moment = moment - timedelta(days=moment.weekday())
            elif unit == "month":
                moment = moment.replace(day=1)
            elif unit != "day":
                raise EphemeraError(f"unknown activity unit {unit!r} (day, week or month)")
            key = int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
            buckets[key] = buckets.get(key, 0) + count
        return sorted(buckets.items())

    def tags(self) -> list[tuple[str, int]]:
        return self.store.tag_counts()

    def sources(self) -> list[tuple[str, int]]:
        return self.store.source_counts()

    def stats(self) -> EngineStats:
        """Counts and health facts for ``ephemera stats`` and the status screen. Cheap: it
        neither loads the model nor opens the vector store."""
        outbox = self.store.outbox_summary()
        held = self.vector_manager.held
        vector_count: int | None = None
        if held is not None:
            with contextlib.suppress(VectorStoreError):
                vector_count = held.count()
        loaded = self._embedder
        cache = CacheStats(**loaded.stats()) if loaded is not None else None
        last_check = self.store.get_meta(MetaKey.LAST_CHECK)
        return EngineStats(
            memories=self.store.count(),
            pending=outbox["pending"],
            outbox_oldest_age_s=outbox["oldest_age_s"],
            outbox_last_error=outbox["last_error"],
            vectors=vector_count,
            vector_backend=describe_url(self.settings.qdrant_url)
            if self.settings.qdrant_url
            else "embedded",
            vector_status=self.vector_status,
            collection=self.vector_collection(),
            embedding_model=self.settings.embedding_model,
            embedding_cache=cache,
            database=describe_url(self.settings.resolved_database_url),
            data_dir=str(self.settings.data_dir),
            tags=len(self.store.tag_counts()),
            last_check=int(last_check) if last_check and last_check.isdigit() else None,
        )

    def iter_all(self) -> Iterator[Memory]:
        """Every memory in id order, a page at a time (export, backups)."""
        return self.store.iter_all()
