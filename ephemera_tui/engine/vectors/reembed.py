"""Re-embedding into a new collection while the old one keeps serving, then switching over.

The active collection is recorded in ``ephemera_meta`` (``vector_collection``, default
``ephemera_memory_vectors``) next to the model that made it (``vector_model``). A re-embed with
another model:

1. builds ``ephemera_memory_vectors__<model slug>`` (an embedded shard directory under
   ``<data_dir>/vectors/``, or a collection on the server) with the new model's dimension;
2. embeds every memory in id order, a batch at a time, recording ``reembed_target`` and
   ``reembed_last_id`` after each batch, so an interrupted run resumes where it stopped;
   meanwhile the old collection keeps serving searches and the outbox keeps draining into it;
3. catches up: every memory's expected payload (content hash, tags, times, model) is compared
   with the new collection, and what differs, is missing or no longer exists is fixed;
4. switches ``vector_collection`` and ``vector_model`` in one transaction (and, on a server,
   points the alias ``ephemera_memory_vectors`` at the new collection), catches up once more
   for writes that raced the switch, and drops the old collection. An embedded shard still
   open in another process is recorded in ``vector_collection_retired`` and dropped later by
   :func:`drop_retired` (the upkeep worker and the next re-embed call it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import EphemeraError
from ..store import META, MetaKey
from ..sync.reconcile import points_without_memory
from .base import COLLECTION, HEAD_ROWS, VectorPoint, VectorStore, collection_for
from .edge import drop_edge_shard
from .rows import embed_rows
from .server import ClientVectors

if TYPE_CHECKING:
    from ..core import Engine
    from ..embedder import CachedEmbedder

TARGET_KEY = MetaKey.REEMBED_TARGET
LAST_KEY = MetaKey.REEMBED_LAST_ID
RETIRED_KEY = MetaKey.VECTOR_COLLECTION_RETIRED


@dataclass(slots=True)
class ReembedReport:
    """What one ``reembed`` call did."""

    model: str
    collection: str
    previous: str | None = None
    embedded: int = 0
    batches: int = 0
    resumed_from: int | None = None  # the last memory id embedded by an earlier run
    caught_up: int = 0
    removed: int = 0
    switched: bool = False
    dropped_old: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "collection": self.collection,
            "previous": self.previous,
            "embedded": self.embedded,
            "batches": self.batches,
            "resumed_from": self.resumed_from,
            "caught_up": self.caught_up,
            "removed": self.removed,
            "switched": self.switched,
            "dropped_old": self.dropped_old,
            "notes": list(self.notes),
        }


def reembed(
    engine: Engine,
    embedder: CachedEmbedder,
    *,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 256,
    max_batches: int | None = None,
) -> ReembedReport:
    """Re-embed every memory with ``embedder`` into its own collection, then switch to it.

    ``progress`` is called with the size of each finished (and recorded) batch; with
    ``max_batches`` the call stops after that many batches and a later call resumes.
    """
    store = engine.store
    model = embedder.name
    active = engine.vector_collection()
    recorded = store.get_meta(MetaKey.VECTOR_MODEL)
    drop_retired(engine)
    state = _state(engine)
    same_model = recorded is None or recorded == model
    older = _older_format(engine)
    upgrade = same_model and older is not None
    if same_model and not upgrade:
        report = ReembedReport(model, active)
        if recorded is None:
            store.set_meta(MetaKey.VECTOR_MODEL, model)
        if state is not None:  # a re-embed to another model was started, then given up
            _drop(engine, state["collection"], None)
            _clear_state(engine)
            report.notes.append(f"abandoned the unfinished re-embed into {state['collection']}")
        report.notes.append(f"the vectors are already made by {model!r}; nothing to re-embed")
        return report
    # a store in an older format is rebuilt in the newest, same model
    target_name = collection_for(model) + ("_head" if upgrade else "")
    report = ReembedReport(model, target_name, previous=active)
    if upgrade:
        report.notes.append(
            f"{active} is in the older {older!r} format: re-embedding into {HEAD_ROWS!r}"
        )
    if target_name == active:
        raise EphemeraError(f"collection {target_name} is already the active one")
    last = -1
    if state is not None and state.get("collection") == target_name:
        last = int(store.get_meta(LAST_KEY) or -1)
        report.resumed_from = last if last >= 0 else None
    else:
        if state is not None:
            _drop(engine, state["collection"], None)
            report.notes.append(f"abandoned the unfinished re-embed into {state['collection']}")
        _drop(engine, target_name, None)  # a leftover from an earlier, abandoned attempt
        with store.write() as conn:
            _put(conn, TARGET_KEY, json.dumps({"collection": target_name, "model": model}))
            _put(conn, LAST_KEY, "-1")
    target = _open_target(engine, target_name, embedder.dim)
    try:
        while max_batches is None or report.batches < max_batches:
            rows = store.id_hashes(last, batch_size)
            if not rows:
                break
            memories = store.get_many([mid for mid, _ in rows])
            report.embedded += _embed(engine, target, embedder, list(memories.values()))
            target.flush()
            last = rows[-1][0]
            store.set_meta(LAST_KEY, str(last))
            report.batches += 1
            if progress is not None:
                progress(len(rows))
        else:
            if store.id_hashes(last, 1):
                report.notes.append(
                    f"stopped after {report.batches} batches; run `ephemera reembed` to resume"
                )
                return report
        fixed, removed = catch_up(engine, target, embedder)
        report.caught_up += fixed
        report.removed += removed
        with store.write() as conn:  # the switch: one transaction
            _put(conn, MetaKey.VECTOR_COLLECTION, target_name)
            _put(conn, MetaKey.VECTOR_MODEL, model)
            conn.execute(META.delete().where(META.c.key.in_([TARGET_KEY, LAST_KEY])))
        report.switched = True
        store.record_change("reembed")
        fixed, removed = catch_up(engine, target, embedder)  # writes that raced the switch
        report.caught_up += fixed
        report.removed += removed
        if isinstance(target, ClientVectors):
            report.dropped_old = _drop(engine, active, target)
            if report.dropped_old and not target.point_alias(COLLECTION):
                report.notes.append(f"could not point the alias {COLLECTION} at {target_name}")
    finally:
        target.close()
    if not isinstance(target, ClientVectors):
        engine.vector_manager.release(retry_now=True)  # the old shard, if this engine holds it
        report.dropped_old = _drop(engine, active, None)
    else:
        engine.vector_manager.release(retry_now=True)
    if not report.dropped_old:
        _retire(engine, active)
        report.notes.append(
            f"the old collection {active} is still open elsewhere; it is dropped once it is free"
        )
    return report


def catch_up(
    engine: Engine, target: VectorStore, embedder: CachedEmbedder, batch_size: int = 1000
) -> tuple[int, int]:
    """Make ``target`` match SQL: (re-)embed memories whose point is missing or whose payload
    differs, delete points of memories that no longer exist. Returns (fixed, removed)."""
    store = engine.store
    fixed = 0
    last = -1
    while True:
        rows = store.id_hashes(last, batch_size)
        if not rows:
            break
        ids = [mid for mid, _ in rows]
        memories = store.get_many(ids)
        payloads = target.payloads(ids)
        differing = [
            m
            for mid, m in memories.items()
            if payloads.get(mid) != _normal(engine.vector_manager.payload(m, embedder.name))
        ]
        fixed += _embed(engine, target, embedder, differing)
        last = rows[-1][0]
    removed = 0
    for gone in points_without_memory(engine, target, -1, page=batch_size):
        target.delete(gone)
        removed += len(gone)
    target.flush()
    return fixed, removed


def drop_retired(engine: Engine) -> list[str]:
    """Drop old collections a re-embed could not drop at once; the names still left."""
    raw = engine.store.get_meta(RETIRED_KEY)
    if not raw:
        return []
    names = [n for n in json.loads(raw) if n != engine.vector_collection()]
    held = engine.vector_manager.held
    shared = held if isinstance(held, ClientVectors) else None
    left = [name for name in names if not _drop(engine, name, shared)]
    with engine.store.write() as conn:
        conn.execute(META.delete().where(META.c.key == RETIRED_KEY))
        if left:
            conn.execute(META.insert().values(key=RETIRED_KEY, value=json.dumps(left)))
    return left


# ---------------------------------------------------------------------------- helpers


def _state(engine: Engine) -> dict[str, Any] | None:
    raw = engine.store.get_meta(TARGET_KEY)
    return json.loads(raw) if raw else None


def _clear_state(engine: Engine) -> None:
    with engine.store.write() as conn:
        conn.execute(META.delete().where(META.c.key.in_([TARGET_KEY, LAST_KEY])))


def _put(conn: Any, key: str, value: str) -> None:
    conn.execute(META.delete().where(META.c.key == key))
    conn.execute(META.insert().values(key=key, value=value))


def _retire(engine: Engine, name: str) -> None:
    raw = engine.store.get_meta(RETIRED_KEY)
    names = json.loads(raw) if raw else []
    if name not in names:
        engine.store.set_meta(RETIRED_KEY, json.dumps([*names, name]))


def _normal(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload as the vector store hands it back (tags as a list)."""
    return {**payload, "tags": list(payload["tags"])}


def _open_target(engine: Engine, name: str, dim: int) -> VectorStore:
    return engine.vector_manager.open_collection(name, dim)


def _older_format(engine: Engine) -> str | None:
    """The active collection's format if it is older than ``head+rows`` (vectors/base.py)."""
    vectors = engine.vectors()
    stored = getattr(vectors, "format", HEAD_ROWS) if vectors is not None else HEAD_ROWS
    return None if stored == HEAD_ROWS else str(stored)


def _embed(
    engine: Engine, target: VectorStore, embedder: CachedEmbedder, memories: list[Any]
) -> int:
    if not memories:
        return 0
    from ..sync.outbox import embed_text

    vectors = embed_rows(embedder.embed, [embed_text(m) for m in memories])
    target.upsert(
        [
            VectorPoint(m.id, vectors[n], engine.vector_manager.payload(m, embedder.name))
            for n, m in enumerate(memories)
        ]
    )
    return len(memories)


def _drop(engine: Engine, name: str, client: ClientVectors | None) -> bool:
    """Drop collection ``name`` (never the active one); False when it is still in use."""
    if name == engine.vector_collection():
        return False
    settings = engine.settings
    if not settings.qdrant_url:
        return drop_edge_shard(engine.vector_manager.shard_path(name))
    try:
        if client is not None:
            client.drop_collection(name)
            return True
        holder = engine.vector_manager.held
        if isinstance(holder, ClientVectors):
            holder.drop_collection(name)
            return True
        if settings.qdrant_url == ":memory:" or settings.qdrant_url.startswith("local:"):
            return False  # local mode: only the serving client may touch it
        from qdrant_client import QdrantClient

        raw = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=10)
        try:
            if raw.collection_exists(name):
                raw.delete_collection(name)
        finally:
            with contextlib.suppress(Exception):
                raw.close()
        return True
    except Exception:  # noqa: BLE001 - a server down or refusing: try again later
        return False
