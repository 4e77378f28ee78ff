"""The embedded backend: qdrant-edge, the Qdrant engine in this process, one shard directory
held by one process at a time (a file lock beside the shard, taken before anything else)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbeddingError, VectorStoreError
from ..filters import SearchFilter, tag_spellings
from .base import (
    HEAD,
    HEAD_ROWS,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    ONE,
    ROWS,
    ROWS_VECTOR,
    VectorPoint,
    best_first,
    check_dim,
    prefetch_depth,
)
from .rows import as_rows, first_row


def _busy(path: Path) -> str:
    return (
        f"vector store {path} is open in another process (an open app or worker); "
        "it will index new memories"
    )


class ShardLock:
    """An exclusive, non-blocking lock on a shard (``<shard>.lock`` beside it), portable
    through portalocker. Held for the shard's lifetime: a second process must not even start
    to create or load the shard (two racing creators corrupt it; edge's own WAL lock comes
    too late), and a process that cannot take it never loads the embedding model for it."""

    def __init__(self, shard: Path) -> None:
        import portalocker

        self.shard = shard
        path = shard.parent / f"{shard.name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: Any = portalocker.Lock(
            str(path),
            mode="a",
            timeout=0,
            fail_when_locked=True,
            flags=portalocker.LOCK_EX | portalocker.LOCK_NB,
        )
        try:
            self._lock.acquire()
        except portalocker.LockException as exc:
            raise VectorStoreError(_busy(shard)) from exc
        except OSError as exc:
            raise VectorStoreError(
                f"cannot open vector store {shard}: {exc.strerror or exc}"
            ) from exc

    def release(self) -> None:
        """Let another process take the shard (idempotent)."""
        with contextlib.suppress(Exception):
            self._lock.release()


def search_threads() -> int:
    """Threads of a shard's search pool: one core fewer than the machine has (at least one).
    A search runs its keyword side on another thread meanwhile; on two cores a pool of two
    (the default, one per core) preempted it and added 1-1.5 ms to the p95 at 100k."""
    return max(1, (os.cpu_count() or 2) - 1)


class EdgeVectors:
    """The embedded Qdrant engine (qdrant-edge), one shard directory, one process at a time.

    A shard made by this version has the ``head+rows`` format (``vectors/base.py``); one made
    earlier keeps its own format (its ``edge_config.json`` says which) until ``ephemera
    reembed`` replaces it; a background index build copies it as it is, except that a store
    of rows moves to head+rows."""

    kind = "embedded"

    def __init__(
        self,
        path: Path,
        dim: int,
        hnsw_ef: int = 128,
        lock: ShardLock | None = None,
        format: str = HEAD_ROWS,
    ) -> None:
        """Open the shard at ``path``, or create it in ``format`` (an older one only for a
        rebuilt copy of a store in that format)."""
        import qdrant_edge as q

        self._q = q
        self.path = path
        self.dim = dim
        self.hnsw_ef = hnsw_ef
        self._lock = threading.RLock()
        self._closed = False
        self._journal: set[int] | None = None  # ids written while a background index builds
        self.format = format
        meta_path = path.parent / f"{path.name}.json"
        self._shard_lock: ShardLock | None = lock or ShardLock(path)
        exists = (path / "wal").exists() or any(path.glob("segments/*")) if path.exists() else False
        try:
            if exists:
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
                if meta:
                    check_dim(int(meta.get("dim", dim)), dim, str(path))
                self.format = _stored_format(path)
                self._shard = self._load(path)
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._shard = q.EdgeShard.create(str(path), self._config())
                meta_path.write_text(json.dumps({"collection": path.name, "dim": dim}))
                for name in INTEGER_FIELDS:
                    self._shard.update(
                        q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Integer)
                    )
                for name in KEYWORD_FIELDS:
                    self._shard.update(
                        q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Keyword)
                    )
        except EmbeddingError:
            self._release_lock()
            raise
        except Exception as exc:  # noqa: BLE001 - the extension raises plain Exception
            self._release_lock()
            message = str(exc)
            if "WouldBlock" in message:
                raise VectorStoreError(_busy(path)) from exc
            raise VectorStoreError(f"cannot open vector store {path}: {message}") from exc

    def _config(self) -> Any:
        q = self._q
        hnsw = q.HnswIndexConfig(
            m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000
        )
        return q.EdgeConfig(
            vectors=self._params(), hnsw_config=hnsw, max_search_threads=search_threads()
        )

    def _params(self) -> Any:
        """The vector parameters of this format."""
        q = self._q
        if self.format == ONE:
            return q.EdgeVectorParams(size=self.dim, distance=q.Distance.Cosine)
        maxsim = q.MultiVectorConfig(q.MultiVectorComparator.MaxSim)
        if self.format == ROWS:
            return q.EdgeVectorParams(
                size=self.dim, distance=q.Distance.Dot, multivector_config=maxsim
            )
        # head+rows: the head is indexed, and searched through an int8 copy in RAM (a quarter
        # of the bytes per distance); rows (m=0: no graph) only reorder its candidates
        unindexed = q.HnswIndexConfig(
            m=0, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000
        )
        int8 = q.ScalarQuantizationConfig(q.ScalarType.Int8, always_ram=True)
        return {
            HEAD: q.EdgeVectorParams(
                size=self.dim, distance=q.Distance.Dot, quantization_config=int8
            ),
            ROWS_VECTOR: q.EdgeVectorParams(
                size=self.dim,
                distance=q.Distance.Dot,
                multivector_config=maxsim,
                hnsw_config=unindexed,
            ),
        }

    def _load(self, path: Path) -> Any:
        """Open an existing shard with today's configuration (it is stored with the shard,
        so shards made before a change adopt it); as stored, if the shard refuses it."""
        q = self._q
        try:
            return q.EdgeShard.load(str(path), self._config())
        except Exception as exc:  # noqa: BLE001 - the extension raises plain Exception
            if "incompatible" not in str(exc).lower():
                raise
            return q.EdgeShard.load(str(path))

    def _filter(self, flt: SearchFilter | None) -> Any:
        if flt is None:
            return None
        q = self._q
        must: list[Any] = []
        if flt.after is not None or flt.before is not None:
            must.append(
                q.FieldCondition(
                    "created_at",
                    range=q.RangeFloat(
                        gte=None if flt.after is None else float(flt.after),
                        lt=None if flt.before is None else float(flt.before),
                    ),
                )
            )
        if flt.sources:
            must.append(q.FieldCondition("source", match=q.MatchAny(list(flt.sources))))
        # Tags are compared folded: ``tags_lc`` where the payload has it, else the usual
        # spellings of the tag in ``tags`` (payloads written before tags_lc existed).
        for tag in flt.tags:
            must.append(
                q.Filter(
                    should=[
                        q.FieldCondition("tags_lc", match=q.MatchValue(tag)),
                        q.FieldCondition("tags", match=q.MatchAny(list(tag_spellings(tag)))),
                    ]
                )
            )
        for name in ("importance", "confidence"):
            low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
            if low is not None or high is not None:
                must.append(
                    q.FieldCondition(
                        name,
                        range=q.RangeFloat(
                            gte=None if low is None else float(low),
                            lte=None if high is None else float(high),
                        ),
                    )
                )
        if flt.ids is not None:
            must.append(q.HasIdCondition(set(flt.ids)))
        must_not: list[Any] = []
        if flt.exclude_ids:
            must_not.append(q.HasIdCondition(set(flt.exclude_ids)))
        if flt.exclude_sources:
            must_not.append(q.FieldCondition("source", match=q.MatchAny(list(flt.exclude_sources))))
        if flt.exclude_tags:
            spelled = [s for tag in flt.exclude_tags for s in tag_spellings(tag)]
            must_not.append(q.FieldCondition("tags_lc", match=q.MatchAny(list(flt.exclude_tags))))
            must_not.append(q.FieldCondition("tags", match=q.MatchAny(spelled)))
        if not must and not must_not:
            return None
        return q.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        q = self._q
        for point in points:
            check_dim(int(np.shape(point.vector)[-1]), self.dim, str(self.path))
        batch = [q.Point(p.id, self._stored(p.vector), p.payload) for p in points]
        with self._lock:
            self._call("upsert", "update", q.UpdateOperation.upsert_points(batch))
            if self._journal is not None:
                self._journal.update(p.id for p in points)

    def _stored(self, vector: np.ndarray) -> Any:
        """A memory's rows as this format stores them."""
        if self.format == ONE:
            return first_row(vector).tolist()
        rows = as_rows(vector)
        if self.format == ROWS:
            return rows.tolist()
        return {HEAD: rows[0].tolist(), ROWS_VECTOR: rows.tolist()}

    def _rows(self, stored: Any) -> np.ndarray:
        """A point's rows from its stored vector (the format's inverse of :meth:`_stored`)."""
        return as_rows(stored[ROWS_VECTOR] if isinstance(stored, dict) else stored)

    def delete(self, ids: Sequence[int]) -> None:
        if ids:
            with self._lock:
                self._call("delete", "update", self._q.UpdateOperation.delete_points(list(ids)))
                if self._journal is not None:
                    self._journal.update(ids)

    def start_journal(self) -> None:
        """Record the ids of every write from now on (replayed into a rebuilt copy)."""
        with self._lock:
            self._journal = set()

    def take_journal(self) -> set[int] | None:
        """The ids written since :meth:`start_journal` (None if it never started); stops it."""
        with self._lock:
            journal, self._journal = self._journal, None
            return journal

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Hold off every other thread's calls on this shard (for a consistent hand-over)."""
        with self._lock:
            yield

    def export(self, after_id: int, limit: int) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
        """Up to ``limit`` points with ids above ``after_id``: id, rows and payload."""
        records = self._scroll(after_id, limit, with_vector=True)
        return [(int(r.id), self._rows(r.vector), dict(r.payload or {})) for r in records]

    def _scroll(self, after_id: int, limit: int, with_vector: bool) -> list[Any]:
        start = after_id + 1 if after_id >= 0 else None
        request = self._q.ScrollRequest(
            offset=start, limit=limit, with_payload=True, with_vector=with_vector
        )
        records, _next = self._call("scroll", "scroll", request)
        return list(records)

    def search(
        self, vector: np.ndarray, limit: int, flt: SearchFilter | None = None, exact: bool = False
    ) -> list[tuple[int, float]]:
        q = self._q
        query = np.asarray(vector, dtype=np.float32).tolist()
        params = q.SearchParams(hnsw_ef=self.hnsw_ef, exact=exact)
        # the request's filter applies to its prefetch too (the head's candidates)
        request = q.QueryRequest(
            limit=self._asked(limit),
            filter=self._filter(flt),
            with_payload=False,
            **self._query(query, limit, params),
        )
        found = [(int(p.id), float(p.score)) for p in self._call("search", "query", request)]
        return best_first(found, limit)

    def _asked(self, limit: int) -> int:
        """Hits to ask for: in head+rows every candidate the rows ordered (cheap), so that
        :func:`best_first` breaks ties the same way every time."""
        return prefetch_depth(limit, self.hnsw_ef) if self.format == HEAD_ROWS else limit

    def _query(self, query: list[float], limit: int, params: Any) -> dict[str, Any]:
        """The scoring part of a search request in this format."""
        q = self._q
        if self.format == ONE:
            return {"query": q.Query.Nearest(query), "params": params}
        if self.format == ROWS:
            return {"query": q.Query.Nearest([query]), "params": params}
        depth = prefetch_depth(limit, self.hnsw_ef)
        head = q.Prefetch(limit=depth, query=q.Query.Nearest(query, using=HEAD), params=params)
        return {"prefetches": [head], "query": q.Query.Nearest([query], using=ROWS_VECTOR)}

    def payloads(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        records = self._call("retrieve", "retrieve", list(ids), True, False)
        return {int(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[int], rows: bool = False) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        records = self._call("retrieve", "retrieve", list(ids), False, True)
        found = {int(r.id): self._rows(r.vector) for r in records}
        return found if rows else {pid: point[0] for pid, point in found.items()}

    def scan(self, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        records = self._scroll(after_id, limit, with_vector=False)
        return [(int(r.id), dict(r.payload or {})) for r in records]

    def count(self) -> int:
        return int(self._call("count", "count", self._q.CountRequest(exact=True)))

    def flush(self) -> None:
        self._call("flush", "flush")

    def index_info(self) -> dict[str, int]:
        """Points, how many of them are in an HNSW index, and segments."""
        info = self._call("info", "info")
        indexed = int(info.indexed_vectors_count)
        if self.format == HEAD_ROWS:  # a point of an indexed segment counts once per vector
            indexed //= 2
        return {
            "points": int(info.points_count),
            "indexed": indexed,
            "segments": int(info.segments_count),
        }

    def optimize(self) -> bool:
        """Build the HNSW index and merge segments. Holds the GIL for minutes at 100k points:
        run it only in a process that does nothing else (``ephemera optimize``)."""
        return bool(self._call("optimize", "optimize"))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._shard.flush()
            finally:
                self._shard.close()
                self._release_lock()

    def _release_lock(self) -> None:
        if self._shard_lock is not None:
            self._shard_lock.release()
            self._shard_lock = None

    def _call(self, action: str, method: str, *args: Any) -> Any:
        """Run one shard call under the lock; a closed shard or an engine failure becomes a
        VectorStoreError (another thread may have closed it to take a snapshot)."""
        with self._lock:
            if self._closed:
                raise VectorStoreError(f"vector store {self.path} is closed (snapshot or shutdown)")
            try:
                return getattr(self._shard, method)(*args)
            except Exception as exc:  # noqa: BLE001 - the extension raises plain Exception
                raise VectorStoreError(f"vector store {self.path}: {action} failed: {exc}") from exc


def _stored_format(path: Path) -> str:
    """The format of the shard at ``path``, as its own stored configuration says; a shard
    without one (made before it was recorded) holds one vector per point."""
    try:
        config = json.loads((path / "edge_config.json").read_text())
        vectors = config.get("vectors", {})
        if HEAD in vectors:
            return HEAD_ROWS
        params = vectors.get("", next(iter(vectors.values()), {}))
        return ROWS if params.get("multivector_config") else ONE
    except (OSError, ValueError, AttributeError, StopIteration):
        return ONE


def drop_edge_shard(path: Path) -> bool:
    """Delete an embedded shard (directory, meta and lock files); False while another
    process (or another handle in this one) holds it open."""
    import shutil

    lock_path = path.parent / f"{path.name}.lock"
    try:
        lock = ShardLock(path)
    except VectorStoreError:
        return False
    try:
        if path.exists():
            shutil.rmtree(path)
        (path.parent / f"{path.name}.json").unlink(missing_ok=True)
    finally:
        lock_path.unlink(missing_ok=True)
        lock.release()
    shutil.rmtree(path.parent / f"{path.name}.build", ignore_errors=True)  # an index build's
    return True
