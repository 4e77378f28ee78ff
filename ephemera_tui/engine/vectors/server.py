"""The server backend: a Qdrant server (or cluster) by URL through qdrant-client.

On a cluster the collection is created with the configured shards, replication factor and
write consistency (:class:`ClusterLayout`), writes carry the configured ordering, and backups
take the snapshot API shard by shard: create a snapshot on a node holding the shard, download
it, check it against the checksum Qdrant reports, delete it there; restore uploads each shard's
file to a node holding that shard.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import EmbeddingError, VectorStoreError
from ..files import sha256_file
from ..filters import SearchFilter, tag_spellings
from ..redact import mask_url, redact
from .base import (
    COLLECTION,
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

if TYPE_CHECKING:
    from ..config import Settings

SHARDS_INDEX = "vectors.shards.json"
"""The file of a backup set listing its per-shard snapshots (name, sha256, points)."""


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """How a server collection is laid out and how its writes wait: ``shards`` and
    ``replication_factor`` at creation, ``write_consistency`` replicas acknowledging each
    write (the collection's write consistency factor), ``ordering`` of each write (weak,
    medium, strong). An existing collection keeps the layout it was created with."""

    shards: int = 1
    replication_factor: int = 1
    write_consistency: int = 1
    ordering: str = "weak"

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterLayout:
        return cls(
            settings.qdrant_shards,
            settings.qdrant_replication_factor,
            settings.qdrant_write_consistency,
            settings.qdrant_write_ordering,
        )


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
        cluster: ClusterLayout | None = None,
    ) -> None:
        from qdrant_client import QdrantClient, models

        self._m = models
        self.dim = dim
        self.url = url
        self.api_key = api_key
        self.hnsw_ef = hnsw_ef
        self.collection = collection
        self.format = HEAD_ROWS  # an existing collection keeps its own (vectors/base.py)
        self.cluster = cluster or ClusterLayout()
        self._ordering = models.WriteOrdering(self.cluster.ordering)
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
                if isinstance(params, dict):  # named vectors: head+rows
                    self.format = HEAD_ROWS
                    params = params.get(HEAD)
                else:
                    multi = getattr(params, "multivector_config", None) is not None
                    self.format = ROWS if multi else ONE
                size = getattr(params, "size", None)
                if size is not None:
                    check_dim(int(size), dim, mask_url(url))
        except EmbeddingError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise VectorStoreError(
                redact(f"Qdrant at {mask_url(url)} unavailable: {detail}", url)
            ) from exc

    def _create(self) -> None:
        m = self._m
        maxsim = m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)
        self._client.create_collection(
            self.collection,
            vectors_config={
                HEAD: m.VectorParams(
                    size=self.dim,
                    distance=m.Distance.DOT,
                    quantization_config=m.ScalarQuantization(
                        scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True)
                    ),
                ),
                # m=0: no graph for the rows; they only reorder the head's candidates
                ROWS_VECTOR: m.VectorParams(
                    size=self.dim,
                    distance=m.Distance.DOT,
                    multivector_config=maxsim,
                    hnsw_config=m.HnswConfigDiff(m=0),
                ),
            },
            hnsw_config=m.HnswConfigDiff(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT),
            shard_number=self.cluster.shards,
            replication_factor=self.cluster.replication_factor,
            write_consistency_factor=self.cluster.write_consistency,
        )
        for name in INTEGER_FIELDS:
            self._client.create_payload_index(self.collection, name, m.PayloadSchemaType.INTEGER)
        for name in KEYWORD_FIELDS:
            self._client.create_payload_index(self.collection, name, m.PayloadSchemaType.KEYWORD)

    def _wrap(self, action: str, exc: Exception) -> VectorStoreError:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return VectorStoreError(
            redact(f"Qdrant at {mask_url(self.url)}: {action} failed: {detail}", self.url)
        )

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
        # Tags are compared folded: ``tags_lc`` where the payload has it, else the usual
        # spellings of the tag in ``tags`` (payloads written before tags_lc existed).
        for tag in flt.tags:
            spelled = list(tag_spellings(tag))
            must.append(
                m.Filter(
                    should=[
                        m.FieldCondition(key="tags_lc", match=m.MatchValue(value=tag)),
                        m.FieldCondition(key="tags", match=m.MatchAny(any=spelled)),
                    ]
                )
            )
        for name in ("importance", "confidence"):
            low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
            if low is not None or high is not None:
                must.append(m.FieldCondition(key=name, range=m.Range(gte=low, lte=high)))
        if flt.ids is not None:
            must.append(m.HasIdCondition(has_id=list(flt.ids)))
        must_not: list[Any] = []
        if flt.exclude_ids:
            must_not.append(m.HasIdCondition(has_id=list(flt.exclude_ids)))
        if flt.exclude_sources:
            excluded = list(flt.exclude_sources)
            must_not.append(m.FieldCondition(key="source", match=m.MatchAny(any=excluded)))
        if flt.exclude_tags:
            spelled = [s for tag in flt.exclude_tags for s in tag_spellings(tag)]
            folded = list(flt.exclude_tags)
            must_not.append(m.FieldCondition(key="tags_lc", match=m.MatchAny(any=folded)))
            must_not.append(m.FieldCondition(key="tags", match=m.MatchAny(any=spelled)))
        if not must and not must_not:
            return None
        return m.Filter(must=must or None, must_not=must_not or None)

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        m = self._m
        for point in points:
            check_dim(int(np.shape(point.vector)[-1]), self.dim, self.url)
        try:
            self._client.upsert(
                self.collection,
                points=[
                    m.PointStruct(id=p.id, vector=self._stored(p.vector), payload=p.payload)
                    for p in points
                ],
                wait=True,
                ordering=self._ordering,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("upsert", exc) from exc

    def _stored(self, vector: np.ndarray) -> Any:
        """A memory's rows as this format stores them."""
        if self.format == ONE:
            return first_row(vector).tolist()
        rows = as_rows(vector)
        if self.format == ROWS:
            return rows.tolist()
        return {HEAD: rows[0].tolist(), ROWS_VECTOR: rows.tolist()}

    @staticmethod
    def _rows(stored: Any) -> np.ndarray:
        """A point's rows from its stored vector (the inverse of :meth:`_stored`)."""
        if isinstance(stored, dict):
            stored = stored[ROWS_VECTOR]
        return as_rows(np.asarray(stored, dtype=np.float32))

    def delete(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        try:
            self._client.delete(
                self.collection,
                points_selector=self._m.PointIdsList(points=list(ids)),
                wait=True,
                ordering=self._ordering,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("delete", exc) from exc

    def search(
        self, vector: np.ndarray, limit: int, flt: SearchFilter | None = None, exact: bool = False
    ) -> list[tuple[int, float]]:
        m = self._m
        query = first_row(vector).tolist()
        params = m.SearchParams(hnsw_ef=self.hnsw_ef, exact=exact)
        scoring: dict[str, Any]
        asked = limit
        if self.format == ONE:
            scoring = {"query": query, "search_params": params}
        elif self.format == ROWS:
            scoring = {"query": [query], "search_params": params}
        else:  # the head's candidates from the index, ordered by rows (the filter applies to both)
            asked = prefetch_depth(limit, self.hnsw_ef)  # all of them: ties broken below
            head = m.Prefetch(query=query, using=HEAD, limit=asked, params=params)
            scoring = {"prefetch": head, "query": [query], "using": ROWS_VECTOR}
        try:
            response = self._client.query_points(
                self.collection,
                query_filter=self._filter(flt),
                limit=asked,
                with_payload=False,
                **scoring,
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("search", exc) from exc
        return best_first([(int(p.id), float(p.score)) for p in response.points], limit)

    def payloads(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        try:
            records = self._client.retrieve(self.collection, ids=list(ids), with_payload=True)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("retrieve", exc) from exc
        return {int(r.id): dict(r.payload or {}) for r in records}

    def vectors(self, ids: Sequence[int], rows: bool = False) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        try:
            records = self._client.retrieve(
                self.collection, ids=list(ids), with_payload=False, with_vectors=True
            )
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("retrieve", exc) from exc
        found = {int(r.id): self._rows(r.vector) for r in records}
        return found if rows else {pid: point[0] for pid, point in found.items()}

    def scan(self, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        records = self._scroll(after_id, limit, with_vectors=False)
        return [(int(r.id), dict(r.payload or {})) for r in records]

    def export(self, after_id: int, limit: int) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
        records = self._scroll(after_id, limit, with_vectors=True)
        return [(int(r.id), self._rows(r.vector), dict(r.payload or {})) for r in records]

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
            raise self._wrap("scroll", exc) from exc
        return sorted(records, key=lambda r: int(r.id))

    def count(self) -> int:
        try:
            return int(self._client.count(self.collection, exact=True).count)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("count", exc) from exc

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self._owns_client:
            return
        with contextlib.suppress(Exception):  # a dead connection is not worth a message
            self._client.close()

    def sibling(self, collection: str, dim: int) -> ClientVectors:
        """Another collection on the same server through this client (closed by us)."""
        return ClientVectors(
            self.url,
            dim,
            api_key=self.api_key,
            hnsw_ef=self.hnsw_ef,
            collection=collection,
            client=self._client,
            cluster=self.cluster,
        )

    def drop_collection(self, name: str) -> None:
        """Delete another collection on this server (a retired one after a re-embed)."""
        try:
            if self._client.collection_exists(name):
                self._client.delete_collection(name)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(f"dropping {name}", exc) from exc

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

    # ------------------------------------------------------------------ cluster and snapshots

    def layout(self) -> dict[str, Any]:
        """The collection's layout as the server reports it (shards, replication factor,
        write consistency factor), which is what counts for an existing collection."""
        try:
            params = self._client.get_collection(self.collection).config.params
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("reading the collection", exc) from exc
        return {
            "shards": getattr(params, "shard_number", None),
            "replication_factor": getattr(params, "replication_factor", None),
            "write_consistency": getattr(params, "write_consistency_factor", None),
            "ordering": self.cluster.ordering,
        }

    def _headers(self) -> dict[str, str]:
        return {"api-key": self.api_key} if self.api_key else {}

    def _shard_nodes(self) -> dict[int, str]:
        """Each shard id and the REST URL of a node holding it (this node when it can)."""
        try:
            info = self._client.collection_cluster_info(self.collection)
        except NotImplementedError as exc:
            raise VectorStoreError(
                f"Qdrant at {self.url}: shard snapshots need a Qdrant server"
            ) from exc
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("reading the cluster layout", exc) from exc
        nodes = {int(s.shard_id): self.url.rstrip("/") for s in info.local_shards}
        remote = {int(s.shard_id): int(s.peer_id) for s in info.remote_shards}
        if any(shard not in nodes for shard in remote):
            peers = self._peer_urls()
            for shard, peer in sorted(remote.items()):
                if shard not in nodes and peer in peers:
                    nodes[shard] = peers[peer]
        missing = set(remote) - set(nodes)
        if missing:
            raise VectorStoreError(
                f"Qdrant at {self.url}: no reachable node holds shard(s) "
                f"{', '.join(map(str, sorted(missing)))}"
            )
        return nodes

    def _peer_urls(self) -> dict[int, str]:
        """REST URLs of the cluster's peers: each peer's host from its cluster URI, with
        this URL's scheme and port (peers answer REST on the port they all share)."""
        try:
            status = self._client.http.cluster_api.cluster_status().result
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("reading the cluster peers", exc) from exc
        ours = urlsplit(self.url)
        out: dict[int, str] = {}
        for peer, info in (getattr(status, "peers", None) or {}).items():
            host = urlsplit(str(info.uri)).hostname
            if host:
                port = f":{ours.port}" if ours.port else ""
                out[int(peer)] = f"{ours.scheme}://{host}{port}"
        return out

    def snapshot_into(self, folder: Path) -> dict[str, Any]:
        """Snapshot every shard into ``folder``: create it on a node holding the shard,
        download it, check its sha256 against the checksum Qdrant reports, delete it from
        the server. Writes ``vectors.shards.json`` listing them; returns a backup manifest's
        ``vectors`` entry."""
        import httpx
        from qdrant_client import QdrantClient

        shards: list[dict[str, Any]] = []
        for shard, node in sorted(self._shard_nodes().items()):
            client = (
                self._client
                if node == self.url.rstrip("/")
                else QdrantClient(url=node, api_key=self.api_key, timeout=60)
            )
            try:
                snap = client.create_shard_snapshot(self.collection, shard, wait=True)
                if snap is None:
                    raise VectorStoreError(f"shard {shard}: Qdrant created no snapshot")
                target = folder / f"vectors.shard-{shard}.snapshot"
                url = f"{node}/collections/{self.collection}/shards/{shard}/snapshots/{snap.name}"
                with (
                    httpx.stream("GET", url, headers=self._headers(), timeout=3600) as response,
                    target.open("wb") as out,
                ):
                    response.raise_for_status()
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                digest = sha256_file(target)
                if snap.checksum and digest != snap.checksum:
                    raise VectorStoreError(
                        f"shard {shard}: the downloaded snapshot's sha256 {digest[:12]}… "
                        f"differs from Qdrant's checksum {snap.checksum[:12]}…"
                    )
                with contextlib.suppress(Exception):
                    client.delete_shard_snapshot(self.collection, shard, snap.name)
                shards.append(
                    {
                        "shard": shard,
                        "file": target.name,
                        "sha256": digest,
                        "bytes": target.stat().st_size,
                        "checked_against_server": bool(snap.checksum),
                    }
                )
            except VectorStoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._wrap(f"snapshot of shard {shard}", exc) from exc
            finally:
                if client is not self._client:
                    client.close()
        index = {"collection": self.collection, "layout": self.layout(), "shards": shards}
        (folder / SHARDS_INDEX).write_text(json.dumps(index, indent=2))
        return {
            "kind": "qdrant-snapshot",
            "file": SHARDS_INDEX,
            "points": self.count(),
            "shards": len(shards),
        }

    def restore_from(self, index_file: Path) -> int:
        """Load a set's per-shard snapshots (``vectors.shards.json``) into this collection:
        each file, checked against its recorded sha256, is uploaded to a node holding its
        shard with snapshot priority. The collection must have as many shards as the set."""
        import httpx

        try:
            index = json.loads(index_file.read_text(encoding="utf-8"))
            shards = [(int(s["shard"]), str(s["file"]), str(s["sha256"])) for s in index["shards"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VectorStoreError(f"{index_file}: unreadable shard list: {exc}") from exc
        nodes = self._shard_nodes()
        if sorted(nodes) != sorted(shard for shard, _, _ in shards):
            raise VectorStoreError(
                f"the backup has {len(shards)} shard(s), collection {self.collection} has "
                f"{len(nodes)}: set qdrant_shards = {len(shards)} for a new collection"
            )
        for shard, name, digest in shards:
            file = index_file.parent / Path(name).name
            if sha256_file(file) != digest:
                raise VectorStoreError(f"{file}: checksum mismatch: the snapshot is corrupt")
            url = f"{nodes[shard]}/collections/{self.collection}/shards/{shard}/snapshots/upload"
            with file.open("rb") as handle:
                try:
                    response = httpx.post(
                        url,
                        params={"priority": "snapshot", "checksum": digest, "wait": "true"},
                        files={"snapshot": (file.name, handle)},
                        headers=self._headers(),
                        timeout=3600,
                    )
                except httpx.HTTPError as exc:
                    raise self._wrap(f"uploading shard {shard}", exc) from exc
            if response.status_code >= 400:
                raise VectorStoreError(
                    f"Qdrant refused the snapshot of shard {shard}: HTTP {response.status_code}"
                )
        return self.count()
