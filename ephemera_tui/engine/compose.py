"""The composition root: the one place that builds an engine from settings and wires its
optional parts (the MeiliSearch migration's dual writer and search router) explicitly.

The CLI, the app and the worker open engines here; tests that want a bare engine construct
:class:`~.core.Engine` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    from .core import Engine
    from .embedder import CachedEmbedder


def open_engine(
    settings: Settings,
    *,
    embedder: CachedEmbedder | None = None,
    clock: Callable[[], float] = time.time,
) -> Engine:
    """An engine for ``settings``, with MeiliSearch dual writing and read routing attached
    while ``[migration.meilisearch]`` names a server and the cut-over has not happened."""
    from .core import Engine
    from .logs import configure_logging

    configure_logging(settings.log_path)
    engine = Engine(settings, embedder=embedder, clock=clock)
    try:
        _wire_migration(engine)
        _wire_service(engine)
    except BaseException:
        engine.close()
        raise
    return engine


def _wire_service(engine: Engine) -> None:
    """While a resident engine serves this data dir, search through it (it holds the vector
    store; this engine's own searches would be keyword only)."""
    settings = engine.settings
    if settings.service == "off" or engine.search_router is not None:
        return
    from ..service.client import find_service
    from ..service.router import ServiceRouter

    client = find_service(settings.data_dir, url=settings.service_url, token=settings.service_token)
    if client is not None:
        engine.route_searches(ServiceRouter(client, engine.local_search))


def _wire_migration(engine: Engine) -> None:
    """Attach dual writing and read routing while a MeiliSearch server is configured."""
    if not engine.settings.meilisearch:
        return
    from ..migration.config import parse_table

    config = parse_table(dict(engine.settings.meilisearch), engine.settings.config_path)
    if not config.live:
        return
    from ..migration.live import install

    install(engine, config)
