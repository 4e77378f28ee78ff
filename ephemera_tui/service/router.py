"""Searching through the resident engine from a process that opened its own engine (a second
app window, a command that works in-process): the service holds the vector store, so it
answers by meaning; when it goes away, this process answers locally again, and its own engine
takes the freed store over on its next attempt (within seconds)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..engine.domain import SearchResult
from ..engine.errors import EphemeraError
from .client import ServiceClient, ServiceUnavailable

log = logging.getLogger(__name__)

LocalSearch = Callable[..., SearchResult]


class ServiceRouter:
    """A search router (see ``Engine.route_searches``) that asks the service first."""

    def __init__(self, client: ServiceClient, local: LocalSearch) -> None:
        self.client: ServiceClient | None = client
        self.local = local
        self._lock = threading.Lock()

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """The service's answer, or the local one once the service is gone."""
        with self._lock:
            client = self.client
        if client is not None and not keyword_only:
            try:
                return client.search(raw, limit)
            except (ServiceUnavailable, EphemeraError) as exc:
                if not isinstance(exc, ServiceUnavailable) and "stopped answering" not in str(exc):
                    raise
                log.warning("the resident engine went away (%s); searching locally", exc)
                with self._lock:
                    self.client = None
                client.close()
        return self.local(raw, limit, keyword_only=keyword_only)

    def status(self) -> str | None:
        """``ok`` while the service answers by meaning for this process; None once gone."""
        return "ok" if self.client is not None else None
