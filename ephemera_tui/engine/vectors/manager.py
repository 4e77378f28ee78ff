"""The owner of the vector side's lifecycle: which collection is active, opening it (the
shard lock first, the embedding model only after), retrying while another process holds
it, releasing it, switching collections, and the payload every point carries.

Re-embedding (:mod:`.reembed`), index builds (:mod:`.index`), backups and the MeiliSearch
importer go through this class; nothing else touches the open store's handle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diskspace import DiskSpaceError, ensure_free
from ..domain import Memory, content_hash
from ..errors import EmbeddingError, EphemeraError, VectorStoreError
from ..filters import fold_tag
from ..redact import redact
from ..store import MetaKey
from .base import COLLECTION, VectorPoint, VectorStore
from .open import open_vectors

if TYPE_CHECKING:
    from ..config import Settings
    from ..embedder import CachedEmbedder
    from ..store import SqlStore
    from .edge import EdgeVectors

RETRY_SECONDS = 3.0
"""How long a failed open is remembered before the next attempt (another process may let go)."""


class VectorManager:
    """Opens, holds, retries, releases and switches the active vector collection."""

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        model_name: Callable[[], str],
        embedder: Callable[[], CachedEmbedder],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.store = store
        self._model_name = model_name  # the configured model's name, without loading it
        self._embedder = embedder  # loads the model on first call
        self.clock = clock
        self._vectors: VectorStore | None = None
        self._collection: str | None = None  # the collection self._vectors holds
        self._error: str | None = None
        self._retry_at = 0.0
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ which collection

    def collection(self) -> str:
        """The active vector collection (switched by a re-embed or an index hand-over)."""
        return self.store.get_meta(MetaKey.VECTOR_COLLECTION) or COLLECTION

    def shard_path(self, collection: str | None = None) -> Path:
        """The embedded shard directory of ``collection`` (default: the active one)."""
        return self.settings.vectors_path.parent / (collection or self.collection())

    # ------------------------------------------------------------------ open and hold

    @property
    def held(self) -> VectorStore | None:
        """The store this process holds open now, without trying to open it."""
        return self._vectors

    @property
    def status(self) -> str:
        """``ok`` while open, else why not (one line)."""
        if self._vectors is not None:
            return "ok"
        return self._error or "not opened yet"

    def get(self) -> VectorStore | None:
        """The open store, opening it if needed; None while unavailable (see :attr:`status`).

        The embedded shard's lock is taken before the model is loaded, so a process that
        finds the store held elsewhere answers at once instead of loading the model first.
        """
        with self._lock:
            if self._vectors is not None:
                return self._vectors
            if self.clock() < self._retry_at:
                return None
            try:
                self._open()
            except (VectorStoreError, EmbeddingError) as exc:
                self._error = redact(str(exc), self.settings.qdrant_url)  # printed and stored
                self._retry_at = self.clock() + RETRY_SECONDS
                return None
            return self._vectors

    def _open(self) -> None:
        from .edge import ShardLock

        collection = self.collection()
        shard = self.shard_path(collection)
        lock = None
        recorded = self._check_model(collection)  # SQL and the configured name: no model load
        try:
            if not self.settings.qdrant_url:
                self.ensure_space(shard)
                lock = ShardLock(shard)
            embedder = self._load_embedder()
            self._vectors = open_vectors(
                self.settings.qdrant_url,
                shard,
                embedder.dim,
                api_key=self.settings.qdrant_api_key,
                hnsw_ef=self.settings.hnsw_ef,
                collection=collection,
                lock=lock,
            )
        except OSError as exc:  # an unreadable or vanished vectors dir: keyword search goes on
            if lock is not None:
                lock.release()
            raise VectorStoreError(
                f"cannot open the vector store {shard}: {exc.strerror or exc}"
            ) from exc
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self._collection = collection
        if recorded is None:
            self.store.set_meta(MetaKey.VECTOR_MODEL, embedder.name)
        self._error = None

    def _load_embedder(self) -> CachedEmbedder:
        """The embedding model; any failure to load it (an unreadable models dir, a broken
        model file) is an EmbeddingError, so a write stays queued and search keeps its
        keyword side."""
        try:
            return self._embedder()
        except EphemeraError:
            raise
        except Exception as exc:  # noqa: BLE001 - loaders raise OSError, RuntimeError, ...
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            where = getattr(exc, "filename", None)
            raise EmbeddingError(
                f"cannot load the embedding model {self._model_name()!r}: {detail}"
                + (f" ({where})" if where else "")
            ) from exc

    def ensure_space(self, path: Path | None = None) -> None:
        """VectorStoreError when the embedded store's filesystem is nearly full: its
        memory-mapped files would kill the process (SIGBUS) on a write that cannot land."""
        if self.settings.qdrant_url:
            return
        try:
            ensure_free(path or self.shard_path(), "vector write")
        except DiskSpaceError as exc:
            raise VectorStoreError(str(exc)) from exc

    def _check_model(self, collection: str) -> str | None:
        """The model recorded for the active collection; EmbeddingError if it is not ours."""
        recorded = self.store.get_meta(MetaKey.VECTOR_MODEL)
        configured = self._model_name()
        if recorded is not None and recorded != configured:
            raise EmbeddingError(
                f"the vectors in {collection} were made by {recorded!r} but the configured "
                f"model is {configured!r}; run `ephemera reembed` to switch (the old vectors "
                f"keep serving meanwhile), or configure embedding_model = {recorded!r}"
            )
        return recorded

    def active(self) -> VectorStore | None:
        """Like :meth:`get`, but first drop a store a switch elsewhere has made stale."""
        with self._lock:
            if self._vectors is not None and self._collection != self.collection():
                self.release(retry_now=True)
        return self.get()

    def release(self, *, retry_now: bool = False) -> None:
        """Close the store so another process can take it; ``retry_now`` lets the next
        :meth:`get` open again at once (after a switch or a restore)."""
        with self._lock:
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
                self._collection = None
            if retry_now:
                self._retry_at = 0.0

    def close(self) -> None:
        """Release the store for good (the engine is closing)."""
        self.release()

    # ------------------------------------------------------------------ switching

    def open_collection(self, name: str, dim: int) -> VectorStore:
        """Open another collection ``name`` of ``dim`` dimensions beside the active one (a
        re-embed's target). On a server, the serving client is shared (qdrant-client's local
        mode admits one client per path)."""
        from .server import ClientVectors

        settings = self.settings
        serving = self._vectors
        if settings.qdrant_url and serving is None:
            serving = self.get()  # None when the configured model is not the serving one
        if settings.qdrant_url and isinstance(serving, ClientVectors):
            return serving.sibling(name, dim)
        return open_vectors(
            settings.qdrant_url,
            self.shard_path(name),
            dim,
            api_key=settings.qdrant_api_key,
            hnsw_ef=settings.hnsw_ef,
            collection=name,
        )

    def adopt(
        self, fresh: EdgeVectors, collection: str, *, replaces: EdgeVectors, expected: str
    ) -> int | None:
        """Switch from the open embedded store ``replaces`` to ``fresh`` (a rebuilt copy of
        it), first replaying into the copy every id written to the old one since its journal
        started. None (nothing switched) when ``replaces`` is no longer the open store or the
        active collection is no longer ``expected``. Returns how many ids were replayed."""
        with self._lock, replaces.frozen():
            if self._vectors is not replaces:
                return None
            journal = replaces.take_journal()
            if journal is None:
                return None
            ids = sorted(journal)
            for start in range(0, len(ids), 256):
                chunk = ids[start : start + 256]
                vectors = replaces.vectors(chunk, rows=True)
                payloads = replaces.payloads(chunk)
                fresh.upsert([VectorPoint(i, vectors[i], payloads[i]) for i in vectors])
                fresh.delete([i for i in chunk if i not in vectors])
            fresh.flush()
            recorded = self.store.get_meta(MetaKey.VECTOR_COLLECTION)
            if (recorded or COLLECTION) != expected:
                return None
            if not self.store.swap_meta(MetaKey.VECTOR_COLLECTION, recorded, collection):
                return None  # a re-embed in another process switched it just now
            self._vectors = fresh
            self._collection = collection
            replaces.close()
            return len(ids)

    # ------------------------------------------------------------------ payloads

    def payload(self, memory: Memory, model: str | None = None) -> dict[str, Any]:
        """The payload of a memory's point: the filter fields, its content hash, the model."""
        return {
            "created_at": memory.created_at,
            "source": memory.source,
            "importance": memory.importance,
            "confidence": memory.confidence,
            "tags": list(memory.tags),
            "tags_lc": [fold_tag(t) for t in memory.tags],  # tag filters ignore case
            "hash": content_hash(memory.content),
            "model": model or self._model_name(),
        }
