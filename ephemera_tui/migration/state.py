"""What the migration remembers: primary-key mapping rows and JSON facts in ``ephemera_meta``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from ..engine.store import SqlStore
from .tables import MEILI_DOCUMENTS, MEILI_OUTBOX

# ephemera_meta keys (values are JSON)
META_SOURCE = "meili.source"  # the last index imported: how its documents map (older journals)
META_SOURCES = "meili.sources"  # {index uid: the same record}, one entry per index imported
META_LAST_IMPORT = "meili.last_import"  # the last import's report
META_LAST_DUMP = "meili.last_dump"  # {"path", "at"} of the last dump imported
META_LAST_COMPARE = "meili.last_compare"  # the last comparison's summary
META_SHADOW = "meili.shadow"  # running shadow-comparison figures
META_DUAL = "meili.dual_write"  # dual-write counters
META_FINISHED = "meili.finished"  # the cut-over record (dual writing stops once set)


def get_json(store: SqlStore, key: str) -> Any:
    raw = store.get_meta(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def set_json(store: SqlStore, key: str, value: Any) -> None:
    store.set_meta(key, json.dumps(value, ensure_ascii=False, sort_keys=True))


@dataclass(frozen=True, slots=True)
class MappingRow:
    index_uid: str
    primary_key: str
    memory_id: int
    extra: dict[str, Any]
    doc_hash: str


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _row(r: Any) -> MappingRow:
    return MappingRow(r.index_uid, r.primary_key, int(r.memory_id), dict(r.extra or {}), r.doc_hash)


def mappings_by_key(store: SqlStore, index_uid: str, keys: Sequence[str]) -> dict[str, MappingRow]:
    out: dict[str, MappingRow] = {}
    c = MEILI_DOCUMENTS.c
    with store.read() as conn:
        for chunk in _chunks(list(keys), 400):
            for r in conn.execute(
                select(MEILI_DOCUMENTS).where(c.index_uid == index_uid, c.primary_key.in_(chunk))
            ):
                out[r.primary_key] = _row(r)
    return out


def mappings_by_memory(
    store: SqlStore, index_uid: str, ids: Sequence[int]
) -> dict[int, MappingRow]:
    out: dict[int, MappingRow] = {}
    c = MEILI_DOCUMENTS.c
    with store.read() as conn:
        for chunk in _chunks(list(ids), 400):
            for r in conn.execute(
                select(MEILI_DOCUMENTS).where(c.index_uid == index_uid, c.memory_id.in_(chunk))
            ):
                out[int(r.memory_id)] = _row(r)
    return out


def indexes_of(store: SqlStore, ids: Sequence[int]) -> dict[int, set[str]]:
    """The indexes each memory has a document in (memories with none are left out)."""
    out: dict[int, set[str]] = {}
    c = MEILI_DOCUMENTS.c
    with store.read() as conn:
        for chunk in _chunks(list(ids), 400):
            for r in conn.execute(select(c.memory_id, c.index_uid).where(c.memory_id.in_(chunk))):
                out.setdefault(int(r.memory_id), set()).add(r.index_uid)
    return out


def save_mappings(store: SqlStore, rows: Sequence[MappingRow], now: int) -> None:
    """Insert or replace mapping rows (one transaction)."""
    if not rows:
        return
    c = MEILI_DOCUMENTS.c
    by_index: dict[str, list[MappingRow]] = {}
    for r in rows:
        by_index.setdefault(r.index_uid, []).append(r)
    with store.write() as conn:
        for index_uid, group in by_index.items():
            for chunk in _chunks(group, 200):
                conn.execute(
                    delete(MEILI_DOCUMENTS).where(
                        c.index_uid == index_uid, c.primary_key.in_([r.primary_key for r in chunk])
                    )
                )
                conn.execute(
                    insert(MEILI_DOCUMENTS),
                    [
                        {
                            "index_uid": r.index_uid,
                            "primary_key": r.primary_key,
                            "memory_id": r.memory_id,
                            "extra": r.extra,
                            "doc_hash": r.doc_hash,
                            "imported_at": now,
                        }
                        for r in chunk
                    ],
                )


def mapping_count(store: SqlStore, index_uid: str | None = None) -> int:
    query = select(func.count()).select_from(MEILI_DOCUMENTS)
    if index_uid is not None:
        query = query.where(MEILI_DOCUMENTS.c.index_uid == index_uid)
    with store.read() as conn:
        return int(conn.execute(query).scalar() or 0)


# ---------------------------------------------------------------------------------- outbox


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    id: int
    memory_id: int
    op: str  # upsert | delete
    index_uid: str
    primary_key: str
    document: dict[str, Any] | None
    attempts: int
    last_error: str | None


def enqueue(store: SqlStore, items: Sequence[dict[str, Any]], now_ms: int) -> None:
    if not items:
        return
    with store.write() as conn:
        conn.execute(
            insert(MEILI_OUTBOX),
            [
                {**i, "enqueued_at": now_ms, "not_before": 0, "attempts": 0, "last_error": None}
                for i in items
            ],
        )


def queued(store: SqlStore, limit: int = 100) -> list[QueuedWrite]:
    c = MEILI_OUTBOX.c
    with store.read() as conn:
        rows = conn.execute(select(MEILI_OUTBOX).order_by(c.id).limit(limit)).all()
    return [
        QueuedWrite(
            int(r.id),
            int(r.memory_id),
            r.op,
            r.index_uid,
            r.primary_key,
            r.document,
            int(r.attempts),
            r.last_error,
        )
        for r in rows
    ]


def queue_summary(store: SqlStore) -> dict[str, Any]:
    c = MEILI_OUTBOX.c
    with store.read() as conn:
        row = conn.execute(
            select(func.count(), func.min(c.enqueued_at), func.max(c.attempts))
        ).one()
        error = conn.execute(
            select(c.last_error).where(c.last_error.is_not(None)).order_by(c.id).limit(1)
        ).scalar()
        due = conn.execute(select(func.max(c.not_before))).scalar()
    return {
        "pending": int(row[0] or 0),
        "oldest_enqueued_ms": row[1],
        "max_attempts": int(row[2] or 0),
        "last_error": error,
        "next_retry_ms": due,
    }


def dequeue(store: SqlStore, ids: Sequence[int]) -> None:
    if not ids:
        return
    with store.write() as conn:
        conn.execute(delete(MEILI_OUTBOX).where(MEILI_OUTBOX.c.id.in_(list(ids))))


def defer(store: SqlStore, item: QueuedWrite, error: str, delay_ms: int, now_ms: int) -> None:
    """Record a failed attempt; the whole queue waits (writes are sent in order)."""
    with store.write() as conn:
        conn.execute(
            update(MEILI_OUTBOX)
            .where(MEILI_OUTBOX.c.id == item.id)
            .values(attempts=item.attempts + 1, last_error=error[:500])
        )
        conn.execute(update(MEILI_OUTBOX).values(not_before=now_ms + delay_ms))
