"""Import MeiliSearch documents as memories, keeping the original primary key.

Every document of every chosen index is mapped and validated before anything is written: a
bad document stops the import with its file and line unless ``skip_bad`` (then it is counted
as skipped). Re-running an import — from the same dump or from a dump of another version —
never duplicates: (index uid, primary key) → memory id lives in ``meili_documents`` (with
the document's fields, kept as JSON), so a document seen before updates its memory or is
skipped as already present.

New memories get their ids from the store's own allocator (as ``ephemera add`` does), which
retries past ids another process took in the same milliseconds; the mapping row is then
claimed with a plain insert, so two imports running at once cannot both keep a memory for
the same document: the one that loses the claim removes its copy.

``_vectors`` are reused when the embedder's model (from the dump's settings, or declared with
``vectors_model``) is the engine's model and the dimension matches; otherwise the memory is
embedded again by the engine, and the reason is counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert as sql_insert
from sqlalchemy import select

from ..engine.core import Engine, embed_text
from ..engine.domain import Draft, Memory
from ..engine.errors import DatabaseError, EphemeraError, NotFoundError, ValidationError
from ..engine.store import FRAGMENTS
from ..engine.vectors import VectorPoint
from ..engine.vectors.rows import with_sentences
from . import state
from .mapping import FieldMap, Mapped, map_document
from .readers import MigrationError, Source
from .tables import MEILI_DOCUMENTS

META_SOURCES = "meili.sources"  # {index uid: how its documents map}, one entry per index


@dataclass
class MigrationReport:
    """What an import did, for the summary line and ``--json``."""

    index_uid: str = ""
    primary_key: str = ""
    source_kind: str = ""
    documents: int = 0
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    reembedded: int = 0
    reembed_reasons: dict[str, int] = field(default_factory=dict)
    vectors_reused: int = 0
    vectors_deferred: int = 0
    invalid: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)
    explain: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n

    def reembed(self, reason: str) -> None:
        self.reembed_reasons[reason] = self.reembed_reasons.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index_uid,
            "primary_key": self.primary_key,
            "source": self.source_kind,
            "documents": self.documents,
            "imported": self.imported,
            "updated": self.updated,
            "skipped": self.skipped,
            "skip_reasons": dict(self.reasons),
            "reembedded": self.reembedded,
            "reembed_reasons": dict(self.reembed_reasons),
            "vectors_reused": self.vectors_reused,
            "vectors_deferred": self.vectors_deferred,
            "invalid": list(self.invalid),
            "notes": list(self.notes),
            "mapping": dict(self.mapping),
            "explain": list(self.explain),
        }

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.reasons.items()))
        line = (
            f"imported {self.imported}, updated {self.updated}, skipped {self.skipped}"
            + (f" ({reasons})" if reasons else "")
            + f", re-embedded {self.reembedded}, vectors reused {self.vectors_reused}"
        )
        if self.vectors_deferred:
            line += f", {self.vectors_deferred} waiting for the vector store"
        return line


def map_all(
    source: Source, fmap: FieldMap, now: float, skip_bad: bool, report: MigrationReport
) -> list[Mapped]:
    """Map every document first; a bad one raises (file and line) unless ``skip_bad``."""
    mapped: list[Mapped] = []
    fallback = 0
    skipped: dict[str, int] = {}
    for doc in source.documents:
        key = str(doc.data.get(source.primary_key))
        try:
            item = map_document(doc.data, fmap, source.primary_key, key, now, source.index_uid)
        except ValidationError as exc:
            message = f"{doc.where}: {exc}"
            if not skip_bad:
                raise MigrationError(message) from None
            report.invalid.append(message)
            report.skip("invalid document")
            continue
        mapped.append(item)
        fallback += item.content_fallback
        for name in item.skipped_values:
            skipped[name] = skipped.get(name, 0) + 1
    if fallback:
        report.notes.append(
            f"{fallback} documents have no text in {', '.join(fmap.content) or 'any field'}: "
            "their other fields became the content"
        )
    for name, count in sorted(skipped.items()):
        report.notes.append(f"{count} values of {name!r} did not fit their target: kept in notes")
    return mapped


def preview(source: Source, fmap: FieldMap, now: float, count: int = 3) -> dict[str, Any]:
    """The mapping and the first few documents as they would be stored (nothing written)."""
    samples: list[dict[str, Any]] = []
    problems: list[str] = []
    unknown: dict[str, int] = {}
    used = fmap.used()
    for doc in source.documents:
        key = str(doc.data.get(source.primary_key))
        try:
            mapped = map_document(doc.data, fmap, source.primary_key, key, now, source.index_uid)
        except ValidationError as exc:
            problems.append(f"{doc.where}: {exc}")
            continue
        for name in mapped.extra:
            if name not in used:
                unknown[name] = unknown.get(name, 0) + 1
        if len(samples) < count:
            draft = mapped.draft
            samples.append(
                {
                    "primary_key": key,
                    "content": draft.content[:200],
                    "created_at": draft.created_at if mapped.has_created_at else None,
                    "source": draft.source,
                    "tags": list(draft.tags),
                    "importance": draft.importance,
                    "confidence": draft.confidence,
                    "notes": draft.notes,
                    "kept_fields": sorted(mapped.extra),
                    "vectors": {n: [len(v) for v in vs] for n, vs in mapped.vectors.items()},
                }
            )
    return {
        "index": source.index_uid,
        "primary_key": source.primary_key,
        "source": source.kind,
        "documents": len(source.documents),
        "mapping": {
            target: {
                "field": name,
                "fields": _fields_of(fmap, target),
                "guessed": target in fmap.guessed,
            }
            for target, name in fmap.fields.items()
        },
        "explain": list(fmap.explain),
        "dump_version": source.dump_version,
        "enqueued_documents": source.enqueued_documents,
        "kept_fields": unknown,
        "samples": samples,
        "problems": problems[:20],
        "problem_count": len(problems),
        "bad_lines": list(source.bad),
        "notes": list(source.notes),
    }


def _fields_of(fmap: FieldMap, target: str) -> list[str]:
    if target == "content":
        return list(fmap.content)
    if target == "tags":
        return list(fmap.tags)
    return [fmap.fields[target]]


def source_record(source: Source, fmap: FieldMap) -> dict[str, Any]:
    """How an index's documents map, for dual writing (``meili.source``/``meili.sources``)."""
    return {
        "index": source.index_uid,
        "primary_key": source.primary_key,
        "mapping": fmap.writeback(),
        "content_fields": list(fmap.content),
        "tag_fields": list(fmap.tags),
        "index_in": fmap.index_in,
        "created_at_format": time_format(source, fmap),
    }


class Importer:
    """Writes mapped documents through the engine's store and vector store."""

    def __init__(
        self,
        engine: Engine,
        *,
        vectors_model: str | None = None,
        embedder_name: str | None = None,
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.vectors_model = vectors_model
        self.embedder_name = embedder_name
        self.batch_size = batch_size
        self.progress = progress or (lambda n: None)

    def run(
        self, source: Source, fmap: FieldMap, *, skip_bad: bool = False, now: float | None = None
    ) -> MigrationReport:
        """Import one index (see :meth:`run_many`)."""
        return self.run_many([(source, fmap)], skip_bad=skip_bad, now=now)[0]

    def run_many(
        self,
        plans: list[tuple[Source, FieldMap]],
        *,
        skip_bad: bool = False,
        now: float | None = None,
    ) -> list[MigrationReport]:
        """Import several indexes: every document of every index is mapped before any write."""
        now = self.engine.clock() if now is None else now
        prepared: list[tuple[Source, FieldMap, MigrationReport, list[Mapped]]] = []
        for source, fmap in plans:
            report = MigrationReport(
                index_uid=source.index_uid,
                primary_key=source.primary_key,
                source_kind=source.kind,
                documents=len(source.documents) + len(source.bad),
                mapping=fmap.to_dict(),
                explain=list(fmap.explain),
                notes=list(source.notes),
            )
            for message in source.bad:
                report.invalid.append(message)
                report.skip("invalid document")
            mapped = map_all(source, fmap, now, skip_bad, report)  # raises before any write
            prepared.append((source, fmap, report, mapped))
        sources = state.get_json(self.store, META_SOURCES) or {}
        for source, fmap, report, mapped in prepared:
            written: dict[int, Mapped] = {}
            for start in range(0, len(mapped), self.batch_size):
                batch = mapped[start : start + self.batch_size]
                written.update(self._write_batch(source.index_uid, batch, report, int(now)))
                self.progress(len(batch))
            self._vectors(source, written, report)
            record = source_record(source, fmap)
            state.set_json(self.store, state.META_SOURCE, record)
            sources[source.index_uid] = record
        state.set_json(self.store, META_SOURCES, sources)
        last = prepared[-1][0] if prepared else None
        if last is not None:
            records = [r.to_dict() for _, _, r, _ in prepared]
            record = dict(records[-1])
            record.update(
                path=str(last.path),
                at=int(now),
                invalid=[m for _, _, r, _ in prepared for m in r.invalid][:20],
                indexes=records if len(records) > 1 else [],
            )
            for name in ("documents", "imported", "updated", "skipped", "reembedded"):
                record[name] = sum(r[name] for r in records)
            state.set_json(self.store, state.META_LAST_IMPORT, record)
            if last.kind == "dump":
                state.set_json(
                    self.store,
                    state.META_LAST_DUMP,
                    {"path": str(last.path.resolve()), "at": int(now)},
                )
        return [r for _, _, r, _ in prepared]

    # ------------------------------------------------------------------ writing

    def _write_batch(
        self, index_uid: str, batch: list[Mapped], report: MigrationReport, now: int
    ) -> dict[int, Mapped]:
        known = state.mappings_by_key(self.store, index_uid, [m.primary_key for m in batch])
        memories = self.store.get_many([row.memory_id for row in known.values()])
        adopt = self._find_orphans(index_uid, [m for m in batch if m.primary_key not in known])
        written: dict[int, Mapped] = {}
        new: list[Mapped] = []
        rows: list[state.MappingRow] = []
        for item in batch:
            row = known.get(item.primary_key)
            if row is None and item.primary_key in adopt:
                # Written by an earlier run that stopped before recording its mapping.
                mid = adopt[item.primary_key]
                rows.append(
                    state.MappingRow(index_uid, item.primary_key, mid, item.extra, item.doc_hash)
                )
                report.skip("already present")
                continue
            if row is None:
                new.append(item)
                continue
            memory = memories.get(row.memory_id)
            if memory is None:
                report.skip("deleted in Ephemera since an earlier import")
                continue
            draft = self._merge(item, memory)
            if draft == Draft.from_memory(memory):
                if row.extra != item.extra or row.doc_hash != item.doc_hash:
                    rows.append(
                        state.MappingRow(
                            index_uid, item.primary_key, memory.id, item.extra, item.doc_hash
                        )
                    )
                report.skip("already present")
                continue
            self.store.update(memory.id, draft)
            rows.append(
                state.MappingRow(index_uid, item.primary_key, memory.id, item.extra, item.doc_hash)
            )
            report.updated += 1
            report.ids.append(memory.id)
            written[memory.id] = item  # text or payload changed: the vector must follow
        state.save_mappings(self.store, rows, now)
        if new:
            # Fresh ids from the store's allocator: it retries past ids another process took.
            created = self.store.insert([m.draft for m in new])
            claims = [
                state.MappingRow(index_uid, item.primary_key, memory.id, item.extra, item.doc_hash)
                for memory, item in zip(created, new, strict=True)
            ]
            lost = self._claim(claims, now)
            if lost:  # a concurrent run may have adopted our very memory: then it stays
                winners = state.mappings_by_key(self.store, index_uid, sorted(lost))
                ours = {m.id for m in created}
                lost = {k for k in lost if k not in winners or winners[k].memory_id not in ours}
            for memory, item in zip(created, new, strict=True):
                if item.primary_key in lost:
                    with contextlib.suppress(NotFoundError):
                        self.store.delete(memory.id)  # another import keeps its own copy
                    report.skip("already present")
                    continue
                written[memory.id] = item
                report.ids.append(memory.id)
                report.imported += 1
        return written

    def _claim(self, rows: list[state.MappingRow], now: int) -> set[str]:
        """Insert new mapping rows; return the keys another import claimed first."""

        def values(r: state.MappingRow) -> dict[str, Any]:
            return {
                "index_uid": r.index_uid,
                "primary_key": r.primary_key,
                "memory_id": r.memory_id,
                "extra": r.extra,
                "doc_hash": r.doc_hash,
                "imported_at": now,
            }

        try:
            with self.store.write() as conn:
                conn.execute(sql_insert(MEILI_DOCUMENTS), [values(r) for r in rows])
            return set()
        except DatabaseError as exc:
            if not getattr(exc, "duplicate_key", False) and "UNIQUE" not in str(exc).upper():
                raise
        lost: set[str] = set()
        for row in rows:  # one at a time, to learn which keys were taken
            try:
                with self.store.write() as conn:
                    conn.execute(sql_insert(MEILI_DOCUMENTS), [values(row)])
            except DatabaseError as exc:
                if not getattr(exc, "duplicate_key", False) and "UNIQUE" not in str(exc).upper():
                    raise
                lost.add(row.primary_key)
        return lost

    @staticmethod
    def _merge(item: Mapped, memory: Memory) -> Draft:
        """The draft a re-imported document asks for; links made in Ephemera are kept, and a
        document without a time keeps the time its memory was given."""
        draft = item.draft.with_changes(associations=memory.associations)
        if not item.has_created_at:
            draft = draft.with_changes(created_at=memory.created_at)
        return draft

    def _find_orphans(self, index_uid: str, items: list[Mapped]) -> dict[str, int]:
        """Memories identical to unmapped documents (same text, time and source)."""
        wanted = {
            (m.draft.content, m.draft.created_at, m.draft.source): m.primary_key
            for m in items
            if m.has_created_at
        }
        if not wanted:
            return {}
        stamps = sorted({k[1] for k in wanted if k[1] is not None})
        found: dict[str, int] = {}
        c = FRAGMENTS.c
        with self.store.read() as conn:
            for start in range(0, len(stamps), 500):
                query = select(c.id, c.content, c.created_at, c.source).where(
                    c.created_at.in_(stamps[start : start + 500])
                )
                for r in conn.execute(query):
                    key = wanted.get((r.content, int(r.created_at), r.source))
                    if key is not None:
                        found.setdefault(key, int(r.id))
        if not found:
            return {}
        taken = state.mappings_by_memory(self.store, index_uid, list(found.values()))
        return {key: mid for key, mid in found.items() if mid not in taken}

    # ------------------------------------------------------------------ vectors

    def _model_of(self, source: Source, embedder: str) -> str | None:
        if self.vectors_model:
            return self.vectors_model
        embedders = source.settings.get("embedders") or {}
        conf = embedders.get(embedder) if isinstance(embedders, dict) else None
        if isinstance(conf, dict) and conf.get("model"):
            return str(conf["model"])
        return None

    def _vectors(self, source: Source, written: dict[int, Mapped], report: MigrationReport) -> None:
        """Reuse matching vectors; leave the rest to the engine's outbox (re-embedded)."""
        if not written:
            return
        engine = self.engine
        try:
            model, dim = engine.embedder.name, engine.embedder.dim
        except EphemeraError as exc:
            report.notes.append(f"embedding model unavailable: {exc}")
            report.vectors_deferred = len(written)
            return
        reuse: dict[int, np.ndarray] = {}
        for mid, item in written.items():
            vector = self._pick(source, item, model, dim, report)
            if vector is not None:
                reuse[mid] = vector
        try:
            vectors = engine.vectors()
        except EphemeraError as exc:
            vectors = None
            report.notes.append(str(exc))
        if vectors is None:
            report.vectors_deferred = len(written)
            report.notes.append(
                f"vector store unavailable ({engine.vector_status}): "
                "vectors will be made by `ephemera sync`"
            )
            return
        if reuse:
            memories = self.store.get_many(list(reuse))
            items = self.store.outbox_for(list(reuse))
            kept = [mid for mid in reuse if mid in memories]
            # a long memory's sentence rows are embedded here; its own vector is reused
            rows = with_sentences(
                engine.embedder.embed,
                [reuse[mid] for mid in kept],
                [embed_text(memories[mid]) for mid in kept],
            )
            vectors.upsert(
                [
                    VectorPoint(mid, rows[n], engine.vector_manager.payload(memories[mid]))
                    for n, mid in enumerate(kept)
                ]
            )
            self.store.clear_outbox([i for i in items if i.op == "upsert"])
            report.vectors_reused = len(reuse)
        rest = [mid for mid in written if mid not in reuse]
        if rest:
            synced = engine.sync()
            if synced.error:
                report.vectors_deferred = len(rest)
                report.notes.append(f"embedding deferred: {synced.error}")
            else:
                report.reembedded = len(rest)

    def _pick(
        self, source: Source, item: Mapped, model: str, dim: int, report: MigrationReport
    ) -> np.ndarray | None:
        if item.vectors_problem:
            report.reembed("unusable _vectors (kept among the fields)")
            return None
        vectors = {n: v for n, v in item.vectors.items() if v}
        if not vectors:
            report.reembed("no vector in the document")
            return None
        name = self.embedder_name
        if name is None:
            if len(vectors) == 1:
                name = next(iter(vectors))
            else:
                matching = [n for n in vectors if self._model_of(source, n) == model]
                name = matching[0] if matching else next(iter(vectors))
        chosen = vectors.get(name)
        if not chosen:
            report.reembed(f"no vector for embedder {name!r}")
            return None
        their_model = self._model_of(source, name)
        if their_model is None:
            report.reembed("vector model unknown (declare it with --vectors-model)")
            return None
        if their_model != model:
            report.reembed(f"vector model {their_model} is not {model}")
            return None
        if len(chosen) != 1:
            report.reembed("several vectors for one document")
            return None
        if len(chosen[0]) != dim:
            report.reembed(f"vector dimension {len(chosen[0])} is not {dim}")
            return None
        array = np.asarray(chosen[0], dtype=np.float32)
        norm = float(np.linalg.norm(array))
        if norm == 0.0:
            report.reembed("zero vector")
            return None
        return array / norm


def time_format(source: Source, fmap: FieldMap) -> str:
    """How the documents wrote their time (``s``, ``ms`` or ``iso``), to write it back alike."""
    name = fmap.fields.get("created_at")
    if name is None:
        return "s"
    for doc in source.documents:
        value = doc.data.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return "ms" if value > 1e11 else "s"
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.replace(".", "", 1).isdigit():
                return "ms" if float(stripped) > 1e11 else "s"
            return "iso"
    return "s"
