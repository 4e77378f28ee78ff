"""The composition root: the one place that builds an engine from settings and wires its
optional parts (the MeiliSearch migration's dual writer and search router) explicitly.

The CLI, the app and the worker open engines here; tests that want a bare engine construct
:class:`~.core.Engine` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    from .core import Engine
    from .embedder import CachedEmbedder


def open_engine(
    settings: Settings,
    *,
    config_path: Path | None = None,
    embedder: CachedEmbedder | None = None,
    clock: Callable[[], float] = time.time,
) -> Engine:
    """An engine for ``settings``, with MeiliSearch dual writing and read routing attached
    while ``[migration.meilisearch]`` names a server and the cut-over has not happened."""
    from .core import Engine

    engine = Engine(settings, embedder=embedder, clock=clock)
    try:
        _wire_migration(engine, config_path)
    except BaseException:
        engine.close()
        raise
    return engine


def _wire_migration(engine: Engine, config_path: Path | None) -> None:
    from ..migration.config import load_meili_config

    config = load_meili_config(config_path)
    if not config.live:
        return
    from ..migration.live import install

    install(engine, config)
