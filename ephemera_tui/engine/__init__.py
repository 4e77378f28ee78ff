"""The Ephemera engine: storage, embeddings, vectors and hybrid search. Never imports Textual.

Heavy libraries (fastembed, qdrant-client) load on first use, so importing this is cheap.
"""

from .config import Settings, load_settings
from .core import Engine, ImportReport, SyncReport
from .domain import CheckReport, Draft, Hit, Memory, SearchResult
from .errors import (
    ConfigError,
    DatabaseError,
    EmbeddingError,
    EphemeraError,
    NotFoundError,
    ValidationError,
    VectorStoreError,
)
from .filters import SearchFilter

__all__ = [
    "CheckReport",
    "ConfigError",
    "DatabaseError",
    "Draft",
    "EmbeddingError",
    "Engine",
    "EphemeraError",
    "Hit",
    "ImportReport",
    "Memory",
    "NotFoundError",
    "SearchFilter",
    "SearchResult",
    "Settings",
    "SyncReport",
    "ValidationError",
    "VectorStoreError",
    "load_settings",
]
