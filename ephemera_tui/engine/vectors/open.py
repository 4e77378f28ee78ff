"""Opening the configured backend: the embedded shard, or a server collection by URL."""

from __future__ import annotations

from pathlib import Path

from .base import VectorStore
from .edge import EdgeVectors, ShardLock
from .server import ClientVectors


def open_vectors(
    qdrant_url: str | None,
    path: Path,
    dim: int,
    api_key: str | None = None,
    hnsw_ef: int = 128,
    collection: str | None = None,
    lock: ShardLock | None = None,
) -> VectorStore:
    """The embedded shard at ``path`` unless a Qdrant URL is configured (then the collection
    ``collection``, by default named like the shard directory)."""
    if qdrant_url:
        return ClientVectors(
            qdrant_url, dim, api_key=api_key, hnsw_ef=hnsw_ef, collection=collection or path.name
        )
    return EdgeVectors(path, dim, hnsw_ef=hnsw_ef, lock=lock)
