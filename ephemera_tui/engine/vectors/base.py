"""The vector store interface and the facts every backend shares.

Collection ``ephemera_memory_vectors``: the model's dimension (384 by default), HNSW m=16,
ef_construct=100. Each point holds a memory's rows (its vector and, for a longer memory, one
per sentence: ``rows.py``), compared by MaxSim over Dot products (collections made before
rows hold one Cosine vector). Point id = memory id; payload = created_at, source,
importance, confidence, tags, content hash and model name, with payload indexes on the
filter fields.
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


def collection_for(model: str) -> str:
    """The collection (and shard directory) name a re-embed with ``model`` builds."""
    import hashlib
    import re

    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:60] or "model"
    tag = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
    return f"{COLLECTION}__{slug}_{tag}"
