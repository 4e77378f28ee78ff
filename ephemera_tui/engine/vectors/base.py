"""The vector store interface and the facts every backend shares.

Collection ``ephemera_memory_vectors``: the model's dimension (384 by default), HNSW m=16,
ef_construct=100. Point id = memory id; payload = created_at, source, importance,
confidence, tags, content hash and model name, with payload indexes on the filter fields.

How a point holds a memory is the collection's *format* (``FORMATS``, newest first):

- ``head+rows``: two named vectors, ``head`` (the memory's own vector, in the HNSW index,
  searched through an int8 copy in RAM) and ``rows`` (its rows, ``rows.py``, compared by
  MaxSim over Dot products, not indexed). A search takes the heads' nearest candidates from
  the index and orders them by their rows. Indexing one vector per memory keeps the index as
  fast to build and search as a store of one vector;
- ``rows``: the rows alone, indexed by MaxSim (stores made while rows were new: every index
  distance compares whole multivectors, so search and build slow down with each extra row);
- ``one``: one Cosine vector per memory (stores made before rows).

Older formats keep working as they are; ``ephemera reembed`` rebuilds a store in the newest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import EmbeddingError
from ..filters import SearchFilter

COLLECTION = "ephemera_memory_vectors"
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
HEAD_ROWS = "head+rows"
ROWS = "rows"
ONE = "one"
FORMATS = (HEAD_ROWS, ROWS, ONE)
HEAD, ROWS_VECTOR = "head", "rows"  # the vector names of the head+rows format
INTEGER_FIELDS = ("created_at", "importance", "confidence")
KEYWORD_FIELDS = ("source", "tags", "tags_lc", "hash", "model")


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """One memory's point: its vector, or its rows ``(n, dim)`` (``vectors/rows.py``)."""

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

    def vectors(self, ids: Sequence[int], rows: bool = False) -> dict[int, np.ndarray]:
        """Each point's own vector, or with ``rows`` all its rows ``(n, dim)``."""
        ...

    def scan(self, after_id: int, limit: int) -> list[tuple[int, dict[str, Any]]]: ...

    def export(self, after_id: int, limit: int) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
        """Up to ``limit`` points with ids above ``after_id``, in id order: id, rows
        ``(n, dim)``, payload."""
        ...

    def count(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def check_dim(actual: int, expected: int, where: str) -> None:
    if actual != expected:
        raise EmbeddingError(
            f"the embedding model makes {expected}-d vectors but the collection at "
            f"{where} holds {actual}-d vectors; use the model that made it, or run "
            "`ephemera reembed` to move to this one"
        )


def prefetch_depth(limit: int, hnsw_ef: int) -> int:
    """Head candidates a head+rows search orders by rows: at least the beam the HNSW index
    explores anyway, so the rows reorder what the index found at no extra index cost (on
    both dev sets within 0.003 of ordering every point by its rows: docs/benchmarks.md)."""
    return max(limit, hnsw_ef)


def best_first(found: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` hits, ties by id: the rows stage of a head+rows search returns
    points of equal score in no fixed order, and the same search must give the same list."""
    return sorted(found, key=lambda hit: (-hit[1], hit[0]))[:limit]


def collection_for(model: str) -> str:
    """The collection (and shard directory) name a re-embed with ``model`` builds."""
    import hashlib
    import re

    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:60] or "model"
    tag = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
    return f"{COLLECTION}__{slug}_{tag}"
