"""Which migration phase is active, the cut-over, and attaching to new engines.

Phases: 0 imported (no server configured) · 1 dual writing, reads from MeiliSearch ·
2 dual writing, reads from Ephemera (``ephemera`` or ``ephemera-with-fallback``) ·
3 finished (``ephemera migrate meili finish``: dual writing stopped, reads from Ephemera).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engine.errors import EphemeraError
from ..engine.files import sha256_file
from . import state
from .config import MeiliConfig

PHASES = {
    -1: "not started",
    0: "imported; no MeiliSearch server configured, so no dual writing",
    1: "dual writing; reads from MeiliSearch",
    2: "dual writing; reads switched to Ephemera",
    3: "finished: dual writing stopped, reads from Ephemera",
}


def phase(engine: Any, config: MeiliConfig) -> int:
    if state.get_json(engine.store, state.META_FINISHED):
        return 3
    if config.live:
        return 1 if config.read_mode == "meilisearch" else 2
    if state.get_json(engine.store, state.META_LAST_IMPORT) or state.mapping_count(engine.store):
        return 0
    return -1


def status(engine: Any, config: MeiliConfig) -> dict[str, Any]:
    """Everything ``ephemera migrate meili status`` shows."""
    store = engine.store
    number = phase(engine, config)
    shadow = state.get_json(store, state.META_SHADOW) or {}
    compared = int(shadow.get("compared", 0))
    return {
        "phase": number,
        "phase_name": PHASES[number],
        "server": config.url,
        "index": config.index,
        "read_mode": config.read_mode
        if number in (1, 2)
        else ("ephemera" if number == 3 else None),
        "mapped_documents": state.mapping_count(store),
        # of them, in the configured index: the documents dual writing and read routing know
        "index_documents": state.mapping_count(store, config.index) if config.index else None,
        "last_import": state.get_json(store, state.META_LAST_IMPORT),
        "last_dump": state.get_json(store, state.META_LAST_DUMP),
        "dual_write": {
            **(state.get_json(store, state.META_DUAL) or {}),
            "queue": state.queue_summary(store),
        },
        "shadow": {
            "count": int(shadow.get("count", 0)),
            "compared": compared,
            "errors": int(shadow.get("errors", 0)),
            "fallbacks": int(shadow.get("fallbacks", 0)),
            "overlap_mean": round(shadow["overlap_sum"] / compared, 4) if compared else None,
            "last": shadow.get("last"),
        },
        "last_compare": state.get_json(store, state.META_LAST_COMPARE),
        "finished": state.get_json(store, state.META_FINISHED),
    }


def finish(
    engine: Any,
    config: MeiliConfig,
    *,
    queries: list[tuple[str, str]] | None = None,
    force: bool = False,
    server: Any = None,
) -> dict[str, Any]:
    """Cut over: send what is still queued, record the final comparison, archive the dump path.

    Refuses while writes are still queued for MeiliSearch unless ``force`` (then they are
    recorded as abandoned in the finish record, not silently dropped).
    """
    store = engine.store
    if state.get_json(store, state.META_FINISHED):
        raise EphemeraError("the MeiliSearch migration is already finished")
    drained: dict[str, Any] = {"sent": 0, "error": None}
    final_compare = None
    if config.live:
        from .live import DualWriter, MeiliServer, compare

        live_server = server or MeiliServer(config)
        drained = DualWriter(engine, config, server=live_server).drain(limit=10_000, force=True)
        if queries:
            _, final_compare = compare(engine, live_server, config, queries)
    queue = state.queue_summary(store)
    if queue["pending"] and not force:
        raise EphemeraError(
            f"{queue['pending']} writes are still queued for MeiliSearch "
            f"(last error: {queue['last_error'] or drained.get('error')}); run again once it is "
            "reachable, or pass --force to finish anyway"
        )
    if final_compare is None:
        final_compare = state.get_json(store, state.META_LAST_COMPARE)
    dump = state.get_json(store, state.META_LAST_DUMP)
    archived: dict[str, Any] | None = None
    if dump and dump.get("path"):
        path = Path(dump["path"])
        archived = {"path": str(path), "imported_at": dump.get("at"), "exists": path.exists()}
        if path.is_file():
            archived.update(size=path.stat().st_size, sha256=sha256_file(path))
    record = {
        "at": int(engine.clock()),
        "final_comparison": final_compare,
        "last_dump": archived,
        "sent_at_finish": drained.get("sent", 0),
        "abandoned_writes": queue["pending"],
        "read_mode_before": config.read_mode if config.live else None,
        "shadow": status(engine, config)["shadow"],
    }
    state.set_json(store, state.META_FINISHED, record)
    # Stop this engine's dual writing and routing at once (new engines never attach).
    from .live import DualWriter, Router

    for observer in engine.write_observers:
        if isinstance(observer, DualWriter):
            engine.stop_observing(observer)
    if isinstance(engine.search_router, Router):
        engine.route_searches(None)
    return record
