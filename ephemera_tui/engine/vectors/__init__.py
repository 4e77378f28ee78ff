"""The vector side: one interface, two backends, and one owner of their lifecycle.

- :mod:`.base` is the :class:`VectorStore` protocol, points, collection facts;
- :mod:`.edge` the embedded qdrant-edge backend (and the shard lock), :mod:`.server` the
  Qdrant-server backend, :mod:`.open` picks one from the settings;
- :mod:`.manager` is :class:`VectorManager`, the one owner of opening, locking, retrying,
  releasing and switching the active collection;
- :mod:`.reembed` moves every memory to a new model's collection; :mod:`.index` builds the
  embedded store's HNSW index (in place, or in a builder process beside a serving store).
"""

from .base import (
    COLLECTION,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    VectorPoint,
    VectorStore,
    collection_for,
)
from .edge import EdgeVectors, ShardLock, drop_edge_shard
from .manager import VectorManager
from .open import open_vectors
from .server import ClientVectors

__all__ = [
    "COLLECTION",
    "HNSW_EF_CONSTRUCT",
    "HNSW_M",
    "ClientVectors",
    "EdgeVectors",
    "ShardLock",
    "VectorManager",
    "VectorPoint",
    "VectorStore",
    "collection_for",
    "drop_edge_shard",
    "open_vectors",
]
