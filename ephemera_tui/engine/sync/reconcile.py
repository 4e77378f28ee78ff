"""Cross-checking SQL against the vector store, and repairing what differs.

One function, :func:`check_slice`, compares a range of memory ids on both sides (missing,
orphaned, stale, wrong model; memories still in the outbox are not problems, and suspects get
a second look so a write racing the check is not counted). ``ephemera check`` runs it over
the whole id range (:func:`full_check`), the upkeep worker one slice per run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..domain import CheckReport, content_hash
from ..errors import VectorStoreError
from ..store import FRAGMENTS, OUTBOX

if TYPE_CHECKING:
    from ..core import Engine
    from ..vectors.base import VectorStore


def classify_vectors(
    vectors: VectorStore, rows: Sequence[tuple[int, str]], pending: set[int], model: str
) -> tuple[list[int], list[int], list[int]]:
    """Split (id, content hash) rows into (missing, stale, wrong model) against the vector
    payloads; memories still waiting in the outbox (``pending``) are not problems."""
    payloads = vectors.payloads([mid for mid, _ in rows])
    missing: list[int] = []
    stale: list[int] = []
    wrong: list[int] = []
    for mid, chash in rows:
        if mid in pending:
            continue
        payload = payloads.get(mid)
        if payload is None:
            missing.append(mid)
        elif payload.get("hash") != chash or "tags_lc" not in payload:
            stale.append(mid)  # changed text, or a point written before tags were folded
        elif payload.get("model") != model:
            wrong.append(mid)
    return missing, stale, wrong


@dataclass(slots=True)
class SliceReport:
    """One slice of the cross-check: ids ``(after_id, upto_id]`` on both sides."""

    after_id: int
    upto_id: int | None  # None: the slice reached the end (the next one starts again from 0)
    checked: int = 0
    missing: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    wrong_model: list[int] = field(default_factory=list)
    repaired: int = 0

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.orphaned) + len(self.stale) + len(self.wrong_model)


def check_slice(engine: Engine, after_id: int, limit: int, repair: bool = True) -> SliceReport:
    """Cross-check the next ``limit`` memories after ``after_id`` (and vector points in the
    same id range): missing, orphaned, stale, wrong model. Memories waiting in the outbox are
    not problems. Problems are confirmed by a second look before they are reported, so a
    write racing the check is not counted; with ``repair`` they are queued and drained.
    """
    vectors = engine.vectors()
    if vectors is None:
        raise VectorStoreError(engine.vector_status)
    rows = engine.store.id_hashes(after_id, limit)
    end = rows[-1][0] if len(rows) == limit else None
    report = SliceReport(after_id, end, checked=len(rows))
    model = engine.model_name

    def classify(ids_hashes: list[tuple[int, str]]) -> tuple[list[int], list[int], list[int]]:
        pending = _pending_among(engine, [mid for mid, _ in ids_hashes])
        return classify_vectors(vectors, ids_hashes, pending, model)

    missing, stale, wrong = classify(rows)
    suspects = set(missing) | set(stale) | set(wrong)
    if suspects:
        # Look again: a write that committed between our reads is not a problem.
        missing, stale, wrong = classify(_id_hashes_for(engine, sorted(suspects)))
    report.missing, report.stale, report.wrong_model = missing, stale, wrong

    orphan_candidates = [
        pid for page in points_without_memory(engine, vectors, after_id, end) for pid in page
    ]
    if orphan_candidates:
        pending = _pending_among(engine, orphan_candidates)
        known = engine.store.existing_ids(orphan_candidates)
        still = vectors.payloads(orphan_candidates)
        report.orphaned = [
            pid
            for pid in orphan_candidates
            if pid not in pending and pid not in known and pid in still
        ]

    if repair and report.problems:
        engine.store.requeue(report.missing + report.stale + report.wrong_model, "upsert")
        engine.store.requeue(report.orphaned, "delete")
        synced = engine.sync()
        report.repaired = min(report.problems, synced.upserted + synced.deleted)
    return report


def points_without_memory(
    engine: Engine, vectors: VectorStore, after_id: int, upto_id: int | None = None, page: int = 500
) -> Iterator[list[int]]:
    """Point ids in ``(after_id, upto_id]`` (to the end with None) whose memory is not in SQL,
    one page of the vector store at a time (a memory still in the outbox is not excluded)."""
    cursor = after_id
    while points := vectors.scan(cursor, page):
        ids = [pid for pid, _ in points if upto_id is None or pid <= upto_id]
        if ids:
            known = engine.store.existing_ids(ids)
            yield [pid for pid in ids if pid not in known]
        if upto_id is not None and points[-1][0] >= upto_id:
            return
        cursor = points[-1][0]


def _pending_among(engine: Engine, ids: list[int]) -> set[int]:
    out: set[int] = set()
    with engine.store.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(
                int(r[0])
                for r in conn.execute(
                    select(OUTBOX.c.memory_id).where(OUTBOX.c.memory_id.in_(chunk))
                )
            )
    return out


def _id_hashes_for(engine: Engine, ids: list[int]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    with engine.store.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                select(FRAGMENTS.c.id, FRAGMENTS.c.content).where(FRAGMENTS.c.id.in_(chunk))
            ).all()
            out.extend((int(r.id), content_hash(r.content)) for r in rows)
    return sorted(out)


def full_check(engine: Engine, repair: bool = False, batch_size: int = 1000) -> CheckReport:
    """Cross-check every memory and point (what ``ephemera check`` runs), slice by slice;
    with ``repair`` the problems are queued and the outbox drained."""
    if engine.vectors() is None:
        return CheckReport(
            0, (), (), (), (), engine.store.pending_count(), vector_status=engine.vector_status
        )
    total = SliceReport(-1, None)
    after = -1
    while True:
        part = check_slice(engine, after, batch_size, repair=False)
        total.checked += part.checked
        total.missing += part.missing
        total.orphaned += part.orphaned
        total.stale += part.stale
        total.wrong_model += part.wrong_model
        if part.upto_id is None:
            break
        after = part.upto_id
    repaired = 0
    pending = engine.store.pending_count()
    if repair and total.problems:
        engine.store.requeue(total.missing + total.stale + total.wrong_model, "upsert")
        engine.store.requeue(total.orphaned, "delete")
        synced = engine.sync()
        repaired = synced.upserted + synced.deleted
        pending = synced.remaining
    return CheckReport(
        total.checked,
        tuple(total.missing),
        tuple(total.orphaned),
        tuple(total.stale),
        tuple(total.wrong_model),
        pending,
        repaired=repaired,
    )
