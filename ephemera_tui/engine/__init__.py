"""The Ephemera engine: storage, embeddings, vectors and hybrid search. Never imports Textual.

Names are resolved lazily (PEP 562): ``from ephemera_tui.engine import load_settings`` loads
only the config module, so the app can paint its first screen before SQLAlchemy, fastembed
and qdrant are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Settings": "config",
    "load_settings": "config",
    "Engine": "core",
    "ImportReport": "domain",
    "SyncReport": "domain",
    "open_engine": "compose",
    "EngineStats": "domain",
    "CheckReport": "domain",
    "Draft": "domain",
    "Hit": "domain",
    "Memory": "domain",
    "SearchResult": "domain",
    "ConfigError": "errors",
    "DatabaseError": "errors",
    "EmbeddingError": "errors",
    "EphemeraError": "errors",
    "NotFoundError": "errors",
    "ValidationError": "errors",
    "VectorStoreError": "errors",
    "SearchFilter": "filters",
}

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
    "EngineStats",
    "open_engine",
    "ValidationError",
    "VectorStoreError",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .compose import open_engine
    from .config import Settings, load_settings
    from .core import Engine
    from .domain import (
        CheckReport,
        Draft,
        EngineStats,
        Hit,
        ImportReport,
        Memory,
        SearchResult,
        SyncReport,
    )
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
