"""The Engine: the one object the CLI and the app call. Plain domain objects in and out."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .config import Settings
from .domain import CheckReport, Draft, Hit, Memory, SearchResult, content_hash
from .embedder import CachedEmbedder, load_embedder
from .errors import EmbeddingError, EphemeraError, NotFoundError, VectorStoreError
from .filters import SearchFilter
from .fusion import fuse, in_background
from .metrics import instrumented, open_metrics
from .query import ParsedQuery, parse_query
from .store import STOPWORDS, OutboxItem, SqlStore, describe_url
from .vectors import COLLECTION, VectorPoint, VectorStore, open_vectors

if TYPE_CHECKING:
    from .reembed import ReembedReport
    from .vectors import EdgeVectors

VECTOR_RETRY_SECONDS = 3.0

WriteObserver = Callable[[str, Memory], None]
"""Called as ``observer(op, memory)`` after a write (op: add, update or delete)."""


class SearchRouter(Protocol):
    """Something that answers :meth:`Engine.search` in the engine's place (same signature)."""

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Answer one search."""
        ...


@dataclass(slots=True)
class SyncReport:
    """What one outbox drain did."""

    upserted: int = 0
    deleted: int = 0
    failed: int = 0
    remaining: int = 0
    error: str | None = None


@dataclass(slots=True)
class ImportReport:
    """What a bulk import did, line by line."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def classify_vectors(
    vectors: VectorStore, rows: Sequence[tuple[int, str]], pending: set[int], model: str
) -> tuple[list[int], list[int], list[int]]:
    """Split (id, content hash) rows into (missing, stale, wrong model) against the vector
    payloads; memories still waiting in the outbox (``pending``) are not problems."""
    payloads = vectors.payloads([mid for mid, _ in rows])
    missing: list[int] = []
    stale: list[int] = []
    wrong: list[int] = []
    for mid, chash in rows:
        if mid in pending:
            continue
        payload = payloads.get(mid)
        if payload is None:
            missing.append(mid)
        elif payload.get("hash") != chash:
            stale.append(mid)
        elif payload.get("model") != model:
            wrong.append(mid)
    return missing, stale, wrong


def embed_text(memory: Memory) -> str:
    """The text embedded for a memory (kept in one place so benchmarks can vary it)."""
    return memory.content


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
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SqlStore(settings.resolved_database_url, clock=clock)
        self._embedder = embedder
        self._vectors: VectorStore | None = None
        self._vectors_collection: str | None = None  # the collection self._vectors holds
        self._vector_error: str | None = None
        self._vector_retry_at = 0.0
        self._open_lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self.last_sync_error: str | None = None
        self._observers: list[WriteObserver] = []
        self._router: SearchRouter | None = None
        self.metrics = open_metrics(self)  # latency, errors, cache, pool, memory -> metrics.db

    # ------------------------------------------------------------------ lifecycle

    @property
    def embedder(self) -> CachedEmbedder:
        with self._open_lock:
            if self._embedder is None:
                self._embedder = load_embedder(
                    self.settings.embedding_model,
                    self.settings.model_cache_dir,
                    self.settings.embedding_cache_size,
                )
            return self._embedder

    def prepare_interactive(self) -> None:
        """Load the model and ready it for search-as-you-type: a one-thread session for
        queries where the embedder has one (the app calls this once it has painted)."""
        prepare = getattr(self.embedder.inner, "prepare_queries", None)
        if prepare is not None:
            prepare()
        self.embedder.embed_query("warm up")

    def vectors(self) -> VectorStore | None:
        """The vector store, or None while it is unavailable (reason in :attr:`vector_status`)."""
        with self._open_lock:
            if self._vectors is not None:
                return self._vectors
            if self.clock() < self._vector_retry_at:
                return None
            try:
                recorded = self._check_model()
                collection = self.vector_collection()
                self._vectors = open_vectors(
                    self.settings.qdrant_url,
                    self.settings.vectors_path.parent / collection,
                    self.embedder.dim,
                    api_key=self.settings.qdrant_api_key,
                    hnsw_ef=self.settings.hnsw_ef,
                    collection=collection,
                )
                self._vectors_collection = collection
                if recorded is None:
                    self.store.set_meta("vector_model", self.embedder.name)
                self._vector_error = None
            except (VectorStoreError, EmbeddingError) as exc:
                self._vector_error = str(exc)
                self._vector_retry_at = self.clock() + VECTOR_RETRY_SECONDS
                return None
            return self._vectors

    def _check_model(self) -> str | None:
        """The model recorded for the active collection; EmbeddingError if it is not ours."""
        recorded = self.store.get_meta("vector_model")
        if recorded is not None and recorded != self.embedder.name:
            raise EmbeddingError(
                f"the vectors in {self.vector_collection()} were made by {recorded!r} but the "
                f"configured model is {self.embedder.name!r}; run `ephemera reembed` to switch "
                f"(the old vectors keep serving meanwhile), or configure "
                f"embedding_model = {recorded!r}"
            )
        return recorded

    def vector_collection(self) -> str:
        """The active vector collection (switched by a re-embed; see docs/operations.md)."""
        return self.store.get_meta("vector_collection") or COLLECTION

    @property
    def vectors_path(self) -> Path:
        """The active embedded shard's directory (``settings.vectors_path`` until a re-embed)."""
        return self.settings.vectors_path.parent / self.vector_collection()

    def _active_vectors(self) -> VectorStore | None:
        """Like :meth:`vectors`, but first drop a store a re-embed has switched away from."""
        with self._open_lock:
            if self._vectors is not None and self._vectors_collection != self.vector_collection():
                self.release_vectors()
                self._vector_retry_at = 0.0
        return self.vectors()

    @property
    def vector_status(self) -> str:
        if self._vectors is not None:
            return "ok"
        return self._vector_error or "not opened yet"

    def adopt_vectors(
        self, fresh: EdgeVectors, collection: str, *, replaces: EdgeVectors, expected: str
    ) -> int | None:
        """Switch from the open embedded store ``replaces`` to ``fresh`` (a rebuilt copy of
        it), first replaying into the copy every id written to the old one since its journal
        started. None (nothing switched) when ``replaces`` is no longer the open store or the
        active collection is no longer ``expected``. Returns how many ids were replayed."""
        with self._open_lock, replaces.frozen():
            if self._vectors is not replaces:
                return None
            journal = replaces.take_journal()
            if journal is None:
                return None
            ids = sorted(journal)
            for start in range(0, len(ids), 256):
                chunk = ids[start : start + 256]
                vectors = replaces.vectors(chunk)
                payloads = replaces.payloads(chunk)
                fresh.upsert([VectorPoint(i, vectors[i], payloads[i]) for i in vectors])
                fresh.delete([i for i in chunk if i not in vectors])
            fresh.flush()
            recorded = self.store.get_meta("vector_collection")
            if (recorded or COLLECTION) != expected:
                return None
            if not self.store.swap_meta("vector_collection", recorded, collection):
                return None  # a re-embed in another process switched it just now
            self._vectors = fresh
            self._vectors_collection = collection
            replaces.close()
            return len(ids)

    def release_vectors(self) -> None:
        """Close the vector store so another process can take it (and retry later)."""
        with self._open_lock:
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
                self._vectors_collection = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.release_vectors()
        self.metrics.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes

    @instrumented("add")
    def add(self, draft: Draft) -> Memory:
        """Record a memory: SQL + outbox in one transaction, then index it if the store is free."""
        memory = self.store.insert([draft])[0]
        self._push([memory.id])
        self._notify("add", memory)
        return memory

    @instrumented("update")
    def update(self, memory_id: int, draft: Draft) -> Memory:
        memory = self.store.update(memory_id, draft)
        self._push([memory_id])
        self._notify("update", memory)
        return memory

    @instrumented("delete")
    def delete(self, memory_id: int) -> Memory:
        memory = self.store.delete(memory_id)
        self._push([memory_id])
        self._notify("delete", memory)
        return memory

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
        for observer in self._observers:
            with contextlib.suppress(Exception):
                observer(op, memory)

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
        self._push([m.id for m in created] + [m for m in explicit if m in existing])

    def _push(self, ids: Sequence[int]) -> None:
        """Index freshly written memories now if the vector store is ours; else leave it queued."""
        if self.vectors() is None:
            return
        items = self.store.outbox_for(ids)
        if items:
            self._apply(items)

    # ------------------------------------------------------------------ sync

    @instrumented("sync")
    def sync(self, batch_size: int = 256, max_batches: int | None = None) -> SyncReport:
        """Drain the outbox into the vector store (what ``ephemera sync`` and the worker run)."""
        report = SyncReport()
        with self._sync_lock:
            if self._active_vectors() is None:
                report.error = self.vector_status
                report.remaining = self.store.pending_count()
                return report
            batches = 0
            while max_batches is None or batches < max_batches:
                items = self.store.due_outbox(batch_size)
                if not items:
                    break
                done = self._apply(items)
                batches += 1
                report.upserted += done.upserted
                report.deleted += done.deleted
                report.failed += done.failed
                if done.error:
                    report.error = done.error
                    break
            report.remaining = self.store.pending_count()
        return report

    def _apply(self, items: Sequence[OutboxItem]) -> SyncReport:
        """Bring these memories' vectors in line with SQL; clear or defer their outbox rows."""
        report = SyncReport()
        vectors = self._active_vectors()  # the outbox drains into the active collection only
        if vectors is None:
            report.error = self.vector_status
            return report
        try:
            current = self.store.get_many([i.memory_id for i in items])
            to_upsert = [current[i.memory_id] for i in items if i.memory_id in current]
            to_delete = [i.memory_id for i in items if i.memory_id not in current]
            if to_upsert:
                embedded = self.embedder.embed([embed_text(m) for m in to_upsert])
                vectors.upsert(
                    [
                        VectorPoint(m.id, embedded[n], self._payload(m))
                        for n, m in enumerate(to_upsert)
                    ]
                )
            vectors.delete(to_delete)
            self.store.clear_outbox(items)
            report.upserted, report.deleted = len(to_upsert), len(to_delete)
            self.last_sync_error = None
        except (VectorStoreError, EmbeddingError) as exc:
            self.metrics.error("vector_upsert")
            report.failed = len(items)
            report.error = str(exc)
            self.last_sync_error = str(exc)
            self.store.defer_outbox(items, str(exc))
        return report

    def _payload(self, memory: Memory, model: str | None = None) -> dict[str, Any]:
        return {
            "created_at": memory.created_at,
            "source": memory.source,
            "importance": memory.importance,
            "confidence": memory.confidence,
            "tags": list(memory.tags),
            "hash": content_hash(memory.content),
            "model": model or self.embedder.name,
        }

    @instrumented("check")
    def check(self, repair: bool = False, batch_size: int = 1000) -> CheckReport:
        """Cross-check SQL against the vector store: missing, orphaned, stale, wrong model.

        Memories still waiting in the outbox are counted as pending, not as problems.
        With ``repair`` the problems are queued and the outbox drained.
        """
        vectors = self.vectors()
        pending_ids = self.store.pending_ids()
        if vectors is None:
            return CheckReport(
                0, (), (), (), (), len(pending_ids), vector_status=self.vector_status
            )
        missing: list[int] = []
        stale: list[int] = []
        wrong_model: list[int] = []
        checked = 0
        last = -1
        model = self.embedder.name
        while True:
            rows = self.store.id_hashes(last, batch_size)
            if not rows:
                break
            checked += len(rows)
            found = classify_vectors(vectors, rows, pending_ids, model)
            missing += found[0]
            stale += found[1]
            wrong_model += found[2]
            last = rows[-1][0]
        orphaned: list[int] = []
        last = -1
        while True:
            points = vectors.scan(last, batch_size)
            if not points:
                break
            ids = [pid for pid, _ in points]
            known = self.store.existing_ids(ids)
            orphaned.extend(pid for pid in ids if pid not in known and pid not in pending_ids)
            last = ids[-1]
        report = CheckReport(
            checked,
            tuple(missing),
            tuple(orphaned),
            tuple(stale),
            tuple(wrong_model),
            len(pending_ids),
        )
        if repair and report.problems:
            self.store.requeue(missing + stale + wrong_model, "upsert")
            self.store.requeue(orphaned, "delete")
            synced = self.sync()
            report = CheckReport(
                checked,
                report.missing,
                report.orphaned,
                report.stale,
                report.wrong_model,
                synced.remaining,
                repaired=synced.upserted + synced.deleted,
            )
        self.store.set_meta("last_check", str(int(self.clock())))
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
        See :mod:`ephemera_tui.engine.reembed`."""
        from .reembed import reembed

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
        """Hybrid search: parse → semantic (Qdrant, filtered) + keyword (SQL, filtered) → fuse →
        enrich from SQL in one query. Answers from keyword alone, and says so, when the vector
        side is unavailable or behind. ``keyword_only`` asks for the keyword side alone (fast
        first results while typing); its mode is then ``keyword`` without a notice."""
        timings: dict[str, float] = {}
        started = time.perf_counter()
        parsed = self.parse(raw)
        timings["parse"] = _ms(started)
        flt = parsed.filter
        if not parsed.has_text:
            listed = self.store.browse(flt, limit=limit)
            timings["total"] = _ms(started)
            hits = tuple(Hit(m, 0.0) for m in listed)
            return SearchResult(raw, hits, mode="browse", timings_ms=timings)
        candidates = max(self.settings.search_candidates, limit * 3)
        notices: list[str] = []
        terms = [t for t in parsed.terms if t not in STOPWORDS] or list(parsed.terms)

        def keyword_side() -> list[tuple[int, float]]:
            keyword_started = time.perf_counter()
            found = self.store.keyword_search(
                terms, flt, candidates, budget=self.settings.keyword_budget
            )
            timings["keyword"] = _ms(keyword_started)
            return found

        semantic: list[tuple[int, float]] = []
        vectors = None if keyword_only else self.vectors()
        pending = self.store.pending_count() if vectors is not None else 0
        # With a vector side, the keyword side runs meanwhile on a worker thread.
        keyword_future = in_background(keyword_side) if vectors is not None else None
        keyword = keyword_side() if keyword_future is None else []
        if vectors is not None:
            try:
                mark = time.perf_counter()
                query_vector = self.embedder.embed_query(parsed.text)
                timings["embed"] = _ms(mark)
                mark = time.perf_counter()
                semantic = vectors.search(query_vector, candidates, flt.payload_part)
                timings["vector"] = _ms(mark)
                # The payload filter is exact once the outbox is drained; phrases, and payloads
                # of memories still waiting there, are checked in SQL.
                if semantic and (flt.phrases or pending):
                    allowed = self.store.filter_ids([pid for pid, _ in semantic], flt)
                    semantic = [(pid, s) for pid, s in semantic if pid in allowed]
            except (VectorStoreError, EmbeddingError) as exc:
                self.metrics.error("vector_search")
                notices.append(f"keyword results only: {exc}")
        elif not keyword_only:
            notices.append(f"keyword results only: {self.vector_status}")
        if keyword_future is not None:
            keyword = keyword_future.result()
        if pending and vectors is not None:
            notices.append(f"{pending} memories not yet searchable by meaning")
        mark = time.perf_counter()
        fused = fuse(
            semantic,
            keyword,
            semantic_weight=self.settings.semantic_weight,
            method=self.settings.fusion,
            rrf_k=self.settings.rrf_k,
        )[:limit]
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

    def stats(self) -> dict[str, Any]:
        """Counts and health facts for ``ephemera stats`` and the status line."""
        outbox = self.store.outbox_summary()
        vectors = self._vectors
        vector_count: int | None = None
        if vectors is not None:
            with contextlib.suppress(VectorStoreError):
                vector_count = vectors.count()
        cache = self._embedder.stats() if self._embedder is not None else None
        return {
            "memories": self.store.count(),
            "pending": outbox["pending"],
            "outbox_oldest_age_s": outbox["oldest_age_s"],
            "outbox_last_error": outbox["last_error"],
            "vectors": vector_count,
            "vector_backend": self.settings.qdrant_url or "embedded",
            "vector_status": self.vector_status,
            "collection": self.vector_collection(),
            "embedding_model": self.settings.embedding_model,
            "embedding_cache": cache,
            "database": describe_url(self.settings.resolved_database_url),
            "data_dir": str(self.settings.data_dir),
            "tags": len(self.store.tag_counts()),
            "last_check": self.store.get_meta("last_check"),
        }


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
