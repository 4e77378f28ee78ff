"""Vector stores behind one small interface: embedded qdrant-edge (default) or a Qdrant server.

Collection ``ephemera_memory_vectors``: 384-d (the model's dimension), Cosine, HNSW m=16,
ef_construct=100. Point id = memory id; payload = created_at, source, importance, confidence,
tags, content hash and model name, with payload indexes on the filter fields.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import EmbeddingError, VectorStoreError
from .filters import SearchFilter

COLLECTION = "ephemera_memory_vectors"
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
INTEGER_FIELDS = ("created_at", "importance", "confidence")
KEYWORD_FIELDS = ("source", "tags", "hash", "model")


@dataclass(frozen=True, slots=True)
class VectorPoint:
    id: int
    vector: np.ndarray
    payload: dict[str, Any]


class VectorStore(Protocol):
    """What the engine needs from a vector database."""

    kind: str
    dim: int

    def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    def delete(self, ids: Sequence[int]) -> None: ...

    def search(
        self, vector: np.ndarray, limit: int, flt: SearchFilter | None = None, exact: bool = False
    ) -> list[tuple[int, float]]: ...

    def payloads(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def scan(self, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]: ...

    def export(self, after_id: int, limit: int) -> list[tuple[int, list[float], dict[str, Any]]]:
        """Up to ``limit`` points with ids above ``after_id``, in id order: id, vector, payload."""
        ...

    def count(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _check_dim(actual: int, expected: int, where: str) -> None:
    if actual != expected:
        raise EmbeddingError(
            f"the embedding model makes {expected}-d vectors but the collection at "
            f"{where} holds {actual}-d vectors; use the model that made it, or run "
            "`ephemera reembed` to move to this one"
        )


def _busy(path: Path) -> str:
    return (
        f"vector store {path} is open in another process (an open app or worker); "
        "it will index new memories"
    )


def _lock_exclusively(lock_path: Path, shard: Path) -> int | None:
    """Take a non-blocking exclusive lock; VectorStoreError if another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on the engine's own WAL lock
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise VectorStoreError(_busy(shard)) from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


class EdgeVectors:
    """The embedded Qdrant engine (qdrant-edge), one shard directory, one process at a time."""

    kind = "embedded"

    def __init__(self, path: Path, dim: int, hnsw_ef: int = 128) -> None:
        import qdrant_edge as q

        self._q = q
        self.path = path
        self.dim = dim
        self.hnsw_ef = hnsw_ef
        self._lock = threading.RLock()
        self._closed = False
        self._journal: set[int] | None = None  # ids written while a background index builds
        meta_path = path.parent / f"{path.name}.json"
        # Held for the shard's lifetime: a second process must not even start to create or
        # load the shard (two racing creators corrupt it; edge's own WAL lock comes too late).
        self._lock_fd = _lock_exclusively(path.parent / f"{path.name}.lock", path)
        exists = (path / "wal").exists() or any(path.glob("segments/*")) if path.exists() else False
        try:
            if exists:
                if meta_path.exists():
                    stored_dim = int(json.loads(meta_path.read_text()).get("dim", dim))
                    _check_dim(stored_dim, dim, str(path))
                self._shard = q.EdgeShard.load(str(path))
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
            _unlock(self._lock_fd)
            raise
        except Exception as exc:  # noqa: BLE001 - the extension raises plain Exception
            _unlock(self._lock_fd)
            message = str(exc)
            if "WouldBlock" in message:
                raise VectorStoreError(_busy(path)) from None
            raise VectorStoreError(f"cannot open vector store {path}: {message}") from None

    def _config(self) -> Any:
        q = self._q
        return q.EdgeConfig(
            vectors=q.EdgeVectorParams(size=self.dim, distance=q.Distance.Cosine),
            hnsw_config=q.HnswIndexConfig(
                m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=10_000
            ),
        )

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
        for tag in flt.tags:
            must.append(q.FieldCondition("tags", match=q.MatchValue(tag)))
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
        must_not = [q.HasIdCondition(set(flt.exclude_ids))] if flt.exclude_ids else None
        if not must and not must_not:
            return None
        return q.Filter(must=must or None, must_not=must_not)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        q = self._q
        for point in points:
            _check_dim(len(point.vector), self.dim, str(self.path))
        batch = [q.Point(p.id, p.vector.astype(np.float32).tolist(), p.payload) for p in points]
        with self._lock:
            self._call("upsert", "update", q.UpdateOperation.upsert_points(batch))
            if self._journal is not None:
                self._journal.update(p.id for p in points)

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

    def export(self, after_id: int, limit: int) -> list[tuple[int, list[float], dict[str, Any]]]:
        """Up to ``limit`` points with ids above ``after_id``: id, vector and payload."""
        records = self._scroll(after_id, limit, with_vector=True)
        return [(int(r.id), list(r.vector), dict(r.payload or {})) for r in records]

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
        request = q.QueryRequest(
            limit=limit,
            query=q.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            filter=self._filter(flt),
            with_payload=False,
            params=q.SearchParams(hnsw_ef=self.hnsw_ef, exact=exact),
        )
        return [(int(p.id), float(p.score)) for p in self._call("search", "query", request)]

    def payloads(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        records = self._call("retrieve", "retrieve", list(ids), True, False)
        return {int(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        records = self._call("retrieve", "retrieve", list(ids), False, True)
        return {int(r.id): np.asarray(r.vector, dtype=np.float32) for r in records}

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
        return {
            "points": int(info.points_count),
            "indexed": int(info.indexed_vectors_count),
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
                _unlock(self._lock_fd)
                self._lock_fd = None

    def _call(self, action: str, method: str, *args: Any) -> Any:
        """Run one shard call under the lock; a closed shard or an engine failure becomes a
        VectorStoreError (another thread may have closed it to take a snapshot)."""
        with self._lock:
            if self._closed:
                raise VectorStoreError(f"vector store {self.path} is closed (snapshot or shutdown)")
            try:
                return getattr(self._shard, method)(*args)
            except Exception as exc:  # noqa: BLE001 - the extension raises plain Exception
                raise VectorStoreError(
                    f"vector store {self.path}: {action} failed: {exc}"
                ) from None


class ClientVectors:
    """A Qdrant server through qdrant-client. ``local:PATH``/``:memory:`` run the same code
    against qdrant-client's local mode (used by the tests; far too slow for real use)."""

    kind = "server"

    def __init__(
        self,
        url: str,
        dim: int,
        api_key: str | None = None,
        hnsw_ef: int = 128,
        collection: str = COLLECTION,
        client: Any = None,
    ) -> None:
        from qdrant_client import QdrantClient, models

        self._m = models
        self.dim = dim
        self.url = url
        self.hnsw_ef = hnsw_ef
        self.collection = collection
        # a shared client (a re-embed next to the serving store: local mode admits one client
        # per path) is closed by its owner
        self._owns_client = client is None
        try:
            if client is not None:
                self._client = client
            elif url == ":memory:":
                self._client = QdrantClient(location=":memory:")
            elif url.startswith("local:"):
                self._client = QdrantClient(path=url[len("local:") :])
            else:
                self._client = QdrantClient(url=url, api_key=api_key, timeout=10)
            if not self._client.collection_exists(self.collection):
                self._create()
            else:
                info = self._client.get_collection(self.collection)
                params = info.config.params.vectors
                size = getattr(params, "size", None)
                if size is not None:
                    _check_dim(int(size), dim, url)
        except EmbeddingError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise VectorStoreError(f"Qdrant at {url} unavailable: {detail}") from None

    def _create(self) -> None:
        m = self._m
        self._client.create_collection(
            self.collection,
            vectors_config=m.VectorParams(size=self.dim, distance=m.Distance.COSINE),
            hnsw_config=m.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
        )
        for name in INTEGER_FIELDS:
            self._client.create_payload_index(self.collection, name, m.PayloadSchemaType.INTEGER)
        for name in KEYWORD_FIELDS:
            self._client.create_payload_index(self.collection, name, m.PayloadSchemaType.KEYWORD)

    def _wrap(self, action: str, exc: Exception) -> VectorStoreError:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return VectorStoreError(f"Qdrant at {self.url}: {action} failed: {detail}")

    def _filter(self, flt: SearchFilter | None) -> Any:
        if flt is None:
            return None
        m = self._m
        must: list[Any] = []
        if flt.after is not None or flt.before is not None:
            must.append(
                m.FieldCondition(key="created_at", range=m.Range(gte=flt.after, lt=flt.before))
            )
        if flt.sources:
            must.append(m.FieldCondition(key="source", match=m.MatchAny(any=list(flt.sources))))
        for tag in flt.tags:
            must.append(m.FieldCondition(key="tags", match=m.MatchValue(value=tag)))
        for name in ("importance", "confidence"):
            low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
            if low is not None or high is not None:
                must.append(m.FieldCondition(key=name, range=m.Range(gte=low, lte=high)))
        if flt.ids is not None:
            must.append(m.HasIdCondition(has_id=list(flt.ids)))
        must_not = [m.HasIdCondition(has_id=list(flt.exclude_ids))] if flt.exclude_ids else None
        if not must and not must_not:
            return None
        return m.Filter(must=must or None, must_not=must_not)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        m = self._m
        for point in points:
            _check_dim(len(point.vector), self.dim, self.url)
        try:
            self._client.upsert(
                self.collection,
                points=[
                    m.PointStruct(
                        id=p.id, vector=p.vector.astype(np.float32).tolist(), payload=p.payload
                    )
                    for p in points
                ],
                wait=True,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("upsert", exc) from None

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        try:
            self._client.delete(
                self.collection, points_selector=self._m.PointIdsList(points=list(ids)), wait=True
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("delete", exc) from None

    def search(
        self, vector: np.ndarray, limit: int, flt: SearchFilter | None = None, exact: bool = False
    ) -> list[tuple[int, float]]:
        try:
            response = self._client.query_points(
                self.collection,
                query=np.asarray(vector, dtype=np.float32).tolist(),
                query_filter=self._filter(flt),
                limit=limit,
                with_payload=False,
                search_params=self._m.SearchParams(hnsw_ef=self.hnsw_ef, exact=exact),
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("search", exc) from None
        return [(int(p.id), float(p.score)) for p in response.points]

    def payloads(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        try:
            records = self._client.retrieve(self.collection, ids=list(ids), with_payload=True)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("retrieve", exc) from None
        return {int(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        try:
            records = self._client.retrieve(
                self.collection, ids=list(ids), with_payload=False, with_vectors=True
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("retrieve", exc) from None
        return {int(r.id): np.asarray(r.vector, dtype=np.float32) for r in records}

    def scan(self, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        records = self._scroll(after_id, limit, with_vectors=False)
        return [(int(r.id), dict(r.payload or {})) for r in records]

    def export(self, after_id: int, limit: int) -> list[tuple[int, list[float], dict[str, Any]]]:
        records = self._scroll(after_id, limit, with_vectors=True)
        return [(int(r.id), list(r.vector), dict(r.payload or {})) for r in records]

    def _scroll(self, after_id: int, limit: int, with_vectors: bool) -> list[Any]:
        try:
            records, _next = self._client.scroll(
                self.collection,
                offset=after_id + 1 if after_id >= 0 else None,
                limit=limit,
                with_payload=True,
                with_vectors=with_vectors,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("scroll", exc) from None
        return sorted(records, key=lambda r: int(r.id))

    def count(self) -> int:
        try:
            return int(self._client.count(self.collection, exact=True).count)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("count", exc) from None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self._owns_client:
            return
        with contextlib.suppress(Exception):  # a dead connection is not worth a message
            self._client.close()

    def drop_collection(self, name: str) -> None:
        """Delete another collection on this server (a retired one after a re-embed)."""
        try:
            if self._client.collection_exists(name):
                self._client.delete_collection(name)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(f"dropping {name}", exc) from None

    def point_alias(self, alias: str) -> bool:
        """Point ``alias`` at this collection in one alias update; False when the server (or
        local mode) refuses, e.g. while a collection still has the alias's name."""
        m = self._m
        try:
            existing = {a.alias_name for a in self._client.get_aliases().aliases}
            operations: list[Any] = []
            if alias in existing:
                operations.append(
                    m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias))
                )
            operations.append(
                m.CreateAliasOperation(
                    create_alias=m.CreateAlias(collection_name=self.collection, alias_name=alias)
                )
            )
            self._client.update_collection_aliases(change_aliases_operations=operations)
        except Exception:  # noqa: BLE001 - aliases are a convenience for other tools
            return False
        return True


def open_vectors(
    qdrant_url: str | None,
    path: Path,
    dim: int,
    api_key: str | None = None,
    hnsw_ef: int = 128,
    collection: str | None = None,
) -> VectorStore:
    """The embedded shard at ``path`` unless a Qdrant URL is configured (then the collection
    ``collection``, by default named like the shard directory)."""
    if qdrant_url:
        return ClientVectors(
            qdrant_url, dim, api_key=api_key, hnsw_ef=hnsw_ef, collection=collection or path.name
        )
    return EdgeVectors(path, dim, hnsw_ef=hnsw_ef)


def collection_for(model: str) -> str:
    """The collection (and shard directory) name a re-embed with ``model`` builds."""
    import hashlib
    import re

    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:60] or "model"
    tag = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
    return f"{COLLECTION}__{slug}_{tag}"


def drop_edge_shard(path: Path) -> bool:
    """Delete an embedded shard (directory, meta and lock files); False while another
    process (or another handle in this one) holds it open."""
    import shutil

    lock_path = path.parent / f"{path.name}.lock"
    try:
        fd = _lock_exclusively(lock_path, path)
    except VectorStoreError:
        return False
    try:
        if path.exists():
            shutil.rmtree(path)
        (path.parent / f"{path.name}.json").unlink(missing_ok=True)
    finally:
        lock_path.unlink(missing_ok=True)
        _unlock(fd)
    shutil.rmtree(path.parent / f"{path.name}.build", ignore_errors=True)  # an index build's
    return True
