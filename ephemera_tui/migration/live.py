"""The live side of the migration: a MeiliSearch server next to Ephemera.

- :class:`DualWriter` (phase 1): every add/edit/delete is queued in ``meili_outbox`` and sent
  to MeiliSearch through the official client, in order. A failure keeps the write queued (with
  a growing back-off) and never fails or blocks the user's write beyond one short timeout.
- :class:`Router` (phase 2): ``read_mode`` routes searches — ``meilisearch``, ``ephemera`` or
  ``ephemera-with-fallback`` — and, while both are on, runs the other side as a shadow
  comparison in the background, logged to ``<data_dir>/migration/shadow.jsonl``.
- :func:`compare`: each query against both, overlap@k, rank agreement and latency side by side.

Everything works on the configured index, with the mapping the import recorded for that index
(``meili.sources[index]``; ``meili.source`` for journals imported before there was one record
per index). Only three calls are made: ``POST /indexes/<uid>/documents`` (add or replace),
``DELETE /indexes/<uid>/documents/<id>`` and ``POST /indexes/<uid>/search``. Their tasks are
not polled: a write counts as sent once MeiliSearch has enqueued it.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..engine.domain import MAX_TAG_LEN, Hit, Memory, SearchResult
from ..engine.errors import EphemeraError, ValidationError
from ..engine.query import parse_timestamp
from . import state
from .config import MeiliConfig
from .mapping import _get, _text

log = logging.getLogger(__name__)

EPHEMERA_KEY_PREFIX = "ephemera-"
DEFAULT_MAPPING = {
    "content": "content",
    "created_at": "created_at",
    "source": "source",
    "tags": "tags",
    "importance": "importance",
    "confidence": "confidence",
    "notes": "notes",
}


class MeiliUnavailable(EphemeraError):
    """The MeiliSearch server did not answer or refused a request."""


def describe_error(exc: BaseException) -> str:
    """One line for a failed call: MeiliSearch's own message, code and HTTP status when it
    answered with an error object, else the client's or the connection's error."""
    message = getattr(exc, "message", None)
    code = getattr(exc, "code", None)
    status = getattr(exc, "status_code", None)
    if status is not None and message:
        # the client appends a version hint to every search error; it is rarely the cause
        message = str(message).split(". Hint: It might not be working because", 1)[0]
        detail = f"{message} ({code}, HTTP {status})" if code else f"{message} (HTTP {status})"
    else:
        detail = str(exc) or type(exc).__name__
    return " ".join(detail.split())[:200]


class MeiliServer:
    """A MeiliSearch server through the official Python client; calls go to the configured
    index unless another index uid is given (writes queued for an index go to that index)."""

    def __init__(self, config: MeiliConfig) -> None:
        import meilisearch  # heavy (requests, pydantic): only when the live path is used

        assert config.url and config.index
        self.config = config
        self.client = meilisearch.Client(config.url, config.key, timeout=config.timeout)  # type: ignore[arg-type]
        self._indexes: dict[str, Any] = {}
        self.index = self._index(config.index)

    def _index(self, uid: str | None) -> Any:
        name = uid or self.config.index
        assert name
        if name not in self._indexes:
            self._indexes[name] = self.client.index(name)  # no request
        return self._indexes[name]

    def _call(self, what: str, func: Callable[[], Any]) -> Any:
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - the client raises its own and requests' errors
            raise MeiliUnavailable(f"MeiliSearch {what} failed: {describe_error(exc)}") from None

    def upsert(
        self, documents: list[dict[str, Any]], primary_key: str, index: str | None = None
    ) -> None:
        target = self._index(index)
        self._call("add documents", lambda: target.add_documents(documents, primary_key))

    def delete(self, key: str, index: str | None = None) -> None:
        target = self._index(index)
        self._call("delete document", lambda: target.delete_document(key))

    def search(self, query: str, limit: int) -> tuple[list[dict[str, Any]], float]:
        started = time.perf_counter()
        answer = self._call("search", lambda: self.index.search(query, {"limit": limit}))
        elapsed = (time.perf_counter() - started) * 1000
        hits = answer.get("hits") if isinstance(answer, dict) else None
        if not isinstance(hits, list):
            raise MeiliUnavailable("MeiliSearch search answered without a hits list")
        return [h for h in hits if isinstance(h, dict)], elapsed


def source_info(store: Any, config: MeiliConfig, index: str | None = None) -> dict[str, Any]:
    """How the documents of ``index`` (default: the configured one) map: primary key field,
    the field per target written back, the content fields in order and the time format.

    Read from the import's record for that index (``meili.sources``), else from the older
    single record (``meili.source``) when it names that index, else from the config."""
    legacy = state.get_json(store, state.META_SOURCE)
    legacy = legacy if isinstance(legacy, dict) else {}
    sources = state.get_json(store, state.META_SOURCES)
    sources = sources if isinstance(sources, dict) else {}
    if index is None:
        index = config.index or legacy.get("index") or (next(iter(sources), None))
    info = sources.get(index) if index is not None else None
    if not isinstance(info, dict):
        info = legacy if legacy.get("index") == index else {}
    mapping = info.get("mapping") if isinstance(info.get("mapping"), dict) else None
    if not mapping:
        mapping = dict(DEFAULT_MAPPING)
        for name, target in config.field_map.items():
            if target in mapping:
                mapping[target] = name
    content_fields = info.get("content_fields")
    if not isinstance(content_fields, list) or not content_fields:
        content_fields = [mapping["content"]] if mapping.get("content") else []
    return {
        "index": index,
        "primary_key": info.get("primary_key") or config.primary_key or "id",
        "mapping": mapping,
        "content_fields": [str(name) for name in content_fields],
        "created_at_format": info.get("created_at_format") or "s",
    }


def _key_value(key: str) -> Any:
    return int(key) if key.isdigit() and len(key) < 16 else key


def to_document(
    memory: Memory, key: str, extra: dict[str, Any], info: dict[str, Any]
) -> dict[str, Any]:
    """The MeiliSearch document for a memory: its original key and fields, with what the
    memory holds written back under the fields it came from.

    A field whose value the memory still holds as it was imported keeps its original value
    (type and format included: a date string stays that string, ``"Science Fiction"`` is not
    re-spelled as the tag ``Science-Fiction``). Content made of several fields is split back
    only where that maps one to one (:func:`write_content`); what cannot be is left as it was
    imported, never overwritten with text that belongs to another field.
    """
    doc = copy.deepcopy(extra)
    doc[info["primary_key"]] = _key_value(key)
    mapping: dict[str, str] = info["mapping"]
    fields = list(info.get("content_fields") or [])
    if not fields and mapping.get("content"):
        fields = [mapping["content"]]
    kept = write_content(doc, memory.content, fields, extra)
    if kept:
        log.warning(
            "MeiliSearch document %s: %s kept as imported (the edit does not map one to one)",
            key,
            ", ".join(kept),
        )
    values: dict[str, Any] = {
        "created_at": memory.created_at,
        "source": memory.source,
        "tags": list(memory.tags),
        "importance": memory.importance,
        "confidence": memory.confidence,
        "notes": memory.notes,
    }
    for target, name in mapping.items():
        if target not in values:
            continue
        original = extra.get(name)
        if name in extra and _as_imported(target, original, values[target]):
            continue  # unchanged: keep the original value exactly
        if target == "created_at":
            doc[name] = _format_time(memory.created_at, info.get("created_at_format", "s"))
        elif target == "tags":
            doc[name] = _tags_back(original, list(memory.tags))
        else:
            doc[name] = values[target]
    return doc


def write_content(
    doc: dict[str, Any], content: str, fields: list[str], original: dict[str, Any]
) -> list[str]:
    """Write ``content`` into its fields in ``doc``; return the fields left as imported because
    the change cannot be placed one to one.

    The import wrote each non-empty content field as one line block, in ``fields`` order, the
    first (title-like) field first. Going back: unchanged → nothing to do; one field → the
    whole content; several → the first line to the title field (unless the title is unchanged
    at the start) and the rest to the one body field that changed, found by matching the
    unchanged fields at both ends; several changed body fields, a title of several lines that
    changed, a content that came from no content field, or a field holding something other
    than text (a list, a number) cannot be split again.
    """
    if not fields:
        return []
    texts = [_text(_get(original, name)) for name in fields]
    imported = "\n".join(t for t in texts if t)
    if content == imported:
        return []
    if original and not imported:
        return list(fields)  # the content came from other fields: nothing maps back
    writes: dict[str, str] = {}
    if len(fields) == 1:
        writes[fields[0]] = content
    else:
        title, first = fields[0], texts[0]
        if first and (content == first or content.startswith(first + "\n")):
            rest = content[len(first) + 1 :]
        elif first and "\n" in first:
            return list(fields)  # a title of several lines changed: no line maps to it
        elif not first and imported:
            rest = content  # the content did not start with a title: it is all body
        else:
            new_title, _, rest = content.partition("\n")
            writes[title] = new_title
        body = [(name, text) for name, text in zip(fields[1:], texts[1:], strict=True) if text]
        placed = _place_body(rest, body, fields[1])
        if placed is None:  # several body fields changed: only the title can be written
            return _apply(doc, original, writes) + [name for name, _ in body]
        writes.update(placed)
    return _apply(doc, original, writes)


def _place_body(rest: str, body: list[tuple[str, str]], body_field: str) -> dict[str, str] | None:
    """The body text ``rest`` split over the body fields (non-empty ones, as imported): the
    unchanged fields at the start and at the end are matched, the one left between takes the
    rest. None when more than one field changed."""
    texts = [t for _, t in body]
    if rest == "\n".join(texts):
        return {}
    if not body:
        return {body_field: rest} if rest else {}
    head = 0
    remaining = rest
    while head < len(body):
        text = texts[head]
        if remaining == text:  # everything after it was deleted
            head, remaining = head + 1, ""
            break
        if not remaining.startswith(text + "\n"):
            break
        head, remaining = head + 1, remaining[len(text) + 1 :]
    tail = 0
    while head + tail < len(body):
        text = texts[len(body) - 1 - tail]
        if remaining == text:  # everything before it was deleted
            tail, remaining = tail + 1, ""
            break
        if not remaining.endswith("\n" + text):
            break
        tail, remaining = tail + 1, remaining[: -(len(text) + 1)]
    middle = body[head : len(body) - tail]
    if len(middle) == 1:
        return {middle[0][0]: remaining}
    if not middle:  # a line added between unchanged fields: the field before it grows
        if head:
            name, text = body[head - 1]
            return {name: text + "\n" + remaining}
        name, text = body[len(body) - tail]
        return {name: remaining + "\n" + text}
    return None


def _apply(doc: dict[str, Any], original: dict[str, Any], writes: dict[str, str]) -> list[str]:
    """Set each field that holds text (or nothing) in the original; return the others."""
    kept: list[str] = []
    for name, value in writes.items():
        before = _get(original, name)
        if before is not None and not isinstance(before, str):
            kept.append(name)
        elif before is None and value == "":
            continue  # nothing to add
        elif not _set(doc, name, value):
            kept.append(name)
    return kept


def _set(doc: dict[str, Any], path: str, value: str) -> bool:
    """Set a field, or a nested one by dotted path through objects; False if it cannot be."""
    if path in doc or "." not in path:
        doc[path] = value
        return True
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            return False
        node = child
    node[parts[-1]] = value
    return True


def _tag(item: Any) -> str:
    return "-".join(str(item).split())


def _as_imported(target: str, original: Any, value: Any) -> bool:
    """True when the memory's value is what the import made of ``original``."""
    if target == "created_at":
        if original in (None, "") or isinstance(original, bool):
            return False
        try:
            return bool(parse_timestamp(original, 0.0, "created_at") == value)
        except (ValidationError, ValueError, TypeError):
            return False
    if target == "tags":
        return any(set(form) == set(value) for form in _tag_forms(original))
    if target == "source":
        return isinstance(original, str) and original.strip() == value
    if target in ("importance", "confidence"):
        return not isinstance(original, bool) and str(original).strip() == str(value)
    return bool(original == value)


def _tag_forms(original: Any) -> list[list[str]]:
    """The tag lists the import may have made of a field value (text: whole or split)."""
    if isinstance(original, str):
        parts = [_tag(p) for p in original.replace(";", ",").split(",")]
        return [[_tag(original)], [p for p in parts if p]]
    if isinstance(original, list):
        tags = [_tag(i) for i in original if isinstance(i, str | int | float)]
        return [[t for t in tags if t and len(t) <= MAX_TAG_LEN]]
    return []


def _tags_back(original: Any, tags: list[str]) -> Any:
    """Changed tags in the original's shape: a list (with the original spelling of tags that
    were there) or, for a text field, comma-separated text."""
    if isinstance(original, str):
        return ", ".join(tags)
    spelled = {_tag(i): i for i in original or [] if isinstance(i, str)}
    return [spelled.get(t, t) for t in tags]


def _format_time(seconds: int, fmt: str) -> Any:
    if fmt == "ms":
        return seconds * 1000
    if fmt == "iso":
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    return seconds


# ---------------------------------------------------------------------------------- dual write


class DualWriter:
    """A write observer: queue every write for MeiliSearch, then try to send the queue.

    Writes go to the configured index: a memory it has a document in, or one made in Ephemera
    (it gets the key ``ephemera-<id>`` there). A memory imported from another index only is
    not sent (that index is not being migrated live; sending it would copy it into this one).
    """

    def __init__(
        self,
        engine: Any,
        config: MeiliConfig,
        server: MeiliServer | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.config = config
        self._server = server
        self.clock = clock or engine.clock
        self._lock = threading.Lock()

    @property
    def server(self) -> MeiliServer:
        if self._server is None:
            self._server = MeiliServer(self.config)
        return self._server

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def __call__(self, op: str, memory: Memory) -> None:
        self.enqueue(op, memory)
        with contextlib.suppress(EphemeraError):
            self.drain()

    def enqueue(self, op: str, memory: Memory) -> None:
        info = source_info(self.store, self.config)
        index = info["index"]
        row = state.mappings_by_memory(self.store, index, [memory.id]).get(memory.id)
        if row is None:
            if state.indexes_of(self.store, [memory.id]).get(memory.id):
                return  # imported from another index: not this index's document
            key, extra = f"{EPHEMERA_KEY_PREFIX}{memory.id}", {}
            if op != "delete":
                state.save_mappings(
                    self.store,
                    [state.MappingRow(index, key, memory.id, {}, "")],
                    int(self.clock()),
                )
        else:
            key, extra = row.primary_key, row.extra
        document = None if op == "delete" else to_document(memory, key, extra, info)
        state.enqueue(
            self.store,
            [
                {
                    "memory_id": memory.id,
                    "op": "delete" if op == "delete" else "upsert",
                    "index_uid": index,
                    "primary_key": key,
                    "document": document,
                }
            ],
            self._now_ms(),
        )

    def drain(self, limit: int = 100, force: bool = False) -> dict[str, Any]:
        """Send queued writes in order, each to the index it was queued for; stop at the
        first failure (it stays queued)."""
        sent = 0
        error: str | None = None
        with self._lock:
            items = state.queued(self.store, limit)
            if not items:
                return {"sent": 0, "error": None, "remaining": 0}
            summary = state.queue_summary(self.store)
            if not force and (summary["next_retry_ms"] or 0) > self._now_ms():
                return {"sent": 0, "error": summary["last_error"], "remaining": summary["pending"]}
            keys: dict[str, str] = {}
            for item in items:
                if item.index_uid not in keys:
                    info = source_info(self.store, self.config, item.index_uid)
                    keys[item.index_uid] = info["primary_key"]
                try:
                    if item.op == "delete":
                        self.server.delete(item.primary_key, item.index_uid)
                    else:
                        self.server.upsert(
                            [item.document or {}], keys[item.index_uid], item.index_uid
                        )
                except EphemeraError as exc:
                    error = str(exc)
                    delay = int(
                        min(3600.0, self.config.retry_seconds * 2 ** min(item.attempts, 7)) * 1000
                    )
                    state.defer(self.store, item, error, delay, self._now_ms())
                    break
                state.dequeue(self.store, [item.id])
                sent += 1
            self._count(sent, error)
        remaining = state.queue_summary(self.store)["pending"]
        return {"sent": sent, "error": error, "remaining": remaining}

    def _count(self, sent: int, error: str | None) -> None:
        figures = state.get_json(self.store, state.META_DUAL) or {}
        figures["sent"] = int(figures.get("sent", 0)) + sent
        if error:
            figures["failures"] = int(figures.get("failures", 0)) + 1
            figures["last_error"] = error
            figures["last_error_at"] = int(self.clock())
        if sent:
            figures["last_sent_at"] = int(self.clock())
        state.set_json(self.store, state.META_DUAL, figures)


# ---------------------------------------------------------------------------------- comparing


def overlap_at(ours: Sequence[int], theirs: Sequence[int], k: int = 10) -> float:
    """|top-k ∩ top-k| / the larger top-k (1.0 when both are empty)."""
    a, b = list(ours)[:k], list(theirs)[:k]
    if not a and not b:
        return 1.0
    return len(set(a) & set(b)) / max(len(a), len(b))


def rank_agreement(ours: Sequence[int], theirs: Sequence[int], k: int = 10) -> float | None:
    """Share of pairs of common results that both order the same way (None: < 2 in common)."""
    a, b = list(ours)[:k], list(theirs)[:k]
    common = [x for x in a if x in set(b)]
    if len(common) < 2:
        return None
    pos = {x: i for i, x in enumerate(b)}
    pairs = concordant = 0
    for i in range(len(common)):
        for j in range(i + 1, len(common)):
            pairs += 1
            concordant += pos[common[i]] < pos[common[j]]
    return concordant / pairs


def meili_memory_ids(
    store: Any, index: str, pk_field: str, hits: list[dict[str, Any]]
) -> tuple[list[int], int]:
    """Memory ids of MeiliSearch hits in rank order, and how many hits map to no memory."""
    keys = [str(h.get(pk_field)) for h in hits]
    rows = state.mappings_by_key(store, index, keys)
    ids = [rows[k].memory_id for k in keys if k in rows]
    return ids, len(keys) - len(ids)


def compare_one(
    engine: Any, server: MeiliServer, query: str, info: dict[str, Any], k: int = 10
) -> dict[str, Any]:
    from ..engine.core import Engine

    started = time.perf_counter()
    local = Engine.search(engine, query, limit=k)  # never the routed search
    ephemera_ms = (time.perf_counter() - started) * 1000
    ours = [h.memory.id for h in local.hits]
    hits, meili_ms = server.search(query, k)
    theirs, unmapped = meili_memory_ids(engine.store, info["index"], info["primary_key"], hits)
    return {
        "query": query,
        "overlap": round(overlap_at(ours, theirs, k), 4),
        "rank_agreement": _round(rank_agreement(ours, theirs, k)),
        "ephemera_ms": round(ephemera_ms, 2),
        "meili_ms": round(meili_ms, 2),
        "ephemera_hits": len(ours),
        "meili_hits": len(hits),
        "meili_unmapped": unmapped,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summarise(rows: list[dict[str, Any]], k: int = 10) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    agreements = [r["rank_agreement"] for r in ok if r["rank_agreement"] is not None]

    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    eph = [r["ephemera_ms"] for r in ok]
    mei = [r["meili_ms"] for r in ok]
    return {
        "queries": len(rows),
        "failed": len(rows) - len(ok),
        "k": k,
        "overlap_mean": _round(statistics.fmean(r["overlap"] for r in ok)) if ok else None,
        "rank_agreement_mean": _round(statistics.fmean(agreements)) if agreements else None,
        "ephemera_ms_p50": pct(eph, 0.5),
        "ephemera_ms_p95": pct(eph, 0.95),
        "meili_ms_p50": pct(mei, 0.5),
        "meili_ms_p95": pct(mei, 0.95),
    }


def compare(
    engine: Any,
    server: MeiliServer,
    config: MeiliConfig,
    queries: list[tuple[str, str]],
    k: int = 10,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run each (where, query) against both; a failing query is reported, not fatal."""
    info = source_info(engine.store, config)
    rows: list[dict[str, Any]] = []
    for where, query in queries:
        try:
            rows.append(compare_one(engine, server, query, info, k))
        except ValidationError as exc:
            rows.append({"query": query, "error": f"{where}: {exc}"})
        except MeiliUnavailable as exc:
            rows.append({"query": query, "error": str(exc)})
    summary = summarise(rows, k)
    summary["at"] = int(engine.clock())
    state.set_json(engine.store, state.META_LAST_COMPARE, summary)
    return rows, summary


# ---------------------------------------------------------------------------------- reads


class Router:
    """Routes ``engine.search`` by read mode; shadows the other side while both are on."""

    def __init__(
        self,
        engine: Any,
        config: MeiliConfig,
        server: MeiliServer | None = None,
        local: Callable[..., SearchResult] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self._server = server
        self.local = local or engine.local_search
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.log_path = Path(engine.settings.data_dir) / "migration" / "shadow.jsonl"

    @property
    def server(self) -> MeiliServer:
        if self._server is None:
            self._server = MeiliServer(self.config)
        return self._server

    def status(self) -> str | None:
        """The engine's own vector status applies (MeiliSearch answers by keyword)."""
        return None

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Answer from the side the read mode names (same signature as ``Engine.search``).
        ``keyword_only`` (the app's first pass while typing) always answers locally."""
        if keyword_only:
            return self.local(raw, limit, keyword_only=True)
        mode = self.config.read_mode
        if mode == "meilisearch":
            try:
                result = self.from_meili(raw, limit)
            except MeiliUnavailable as exc:
                local = self.local(raw, limit)
                return _with_notice(local, f"answered by Ephemera: {exc}")
            self._shadow(raw, limit, result, primary="meilisearch")
            return result
        if mode == "ephemera":
            result = self.local(raw, limit)
            self._shadow(raw, limit, result, primary="ephemera")
            return result
        # ephemera-with-fallback
        reason: str | None = None
        result_or_none: SearchResult | None = None
        try:
            result_or_none = self.local(raw, limit)
        except ValidationError:
            raise
        except EphemeraError as exc:
            reason = str(exc)
        if result_or_none is not None:
            if result_or_none.mode == "browse":
                return result_or_none
            if not result_or_none.hits:
                reason = "no results in Ephemera"
            elif result_or_none.mode == "keyword":
                reason = "Ephemera answered by keyword only"
        if reason is None:
            assert result_or_none is not None
            self._shadow(raw, limit, result_or_none, primary="ephemera")
            return result_or_none
        try:
            fallback = self.from_meili(raw, limit)
        except MeiliUnavailable:
            if result_or_none is None:
                raise EphemeraError(reason) from None
            return result_or_none
        if not fallback.hits and result_or_none is not None:
            return result_or_none
        self._count_fallback()
        return _with_notice(fallback, f"answered by MeiliSearch ({reason})")

    def from_meili(self, raw: str, limit: int) -> SearchResult:
        parsed = self.engine.parse(raw)
        started = time.perf_counter()
        hits, elapsed = self.server.search(parsed.text or raw, limit)
        info = source_info(self.engine.store, self.config)
        ids, unmapped = meili_memory_ids(
            self.engine.store, info["index"], info["primary_key"], hits
        )
        memories = self.engine.store.get_many(ids)
        found = tuple(
            Hit(memories[mid], 1.0 / rank, matched_terms=parsed.terms)
            for rank, mid in enumerate(ids, start=1)
            if mid in memories
        )
        notices = (f"{unmapped} MeiliSearch hits are not in Ephemera yet",) if unmapped else ()
        timings = {
            "meilisearch": round(elapsed, 3),
            "total": round((time.perf_counter() - started) * 1000, 3),
        }
        return SearchResult(raw, found, notices, "meilisearch", timings)

    # ------------------------------------------------------------------ shadow

    def _shadow(self, raw: str, limit: int, result: SearchResult, primary: str) -> None:
        if not self.config.shadow or result.mode == "browse":
            return
        ids = [h.memory.id for h in result.hits]
        primary_ms = float(result.timings_ms.get("total", 0.0))
        thread = threading.Thread(
            target=self._run_shadow, args=(raw, limit, ids, primary, primary_ms), daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _run_shadow(
        self, raw: str, limit: int, ids: list[int], primary: str, primary_ms: float
    ) -> None:
        try:
            if primary == "ephemera":
                other = self.from_meili(raw, limit)
                ours, theirs = ids, [h.memory.id for h in other.hits]
                eph_ms, mei_ms = primary_ms, other.timings_ms.get("meilisearch", 0.0)
            else:
                other = self.local(raw, limit)
                ours, theirs = [h.memory.id for h in other.hits], ids
                eph_ms, mei_ms = other.timings_ms.get("total", 0.0), primary_ms
            entry: dict[str, Any] = {
                "at": int(self.engine.clock()),
                "query": raw,
                "primary": primary,
                "overlap": round(overlap_at(ours, theirs, limit), 4),
                "rank_agreement": _round(rank_agreement(ours, theirs, limit)),
                "ephemera_ms": round(eph_ms, 2),
                "meili_ms": round(mei_ms, 2),
            }
        except Exception as exc:  # noqa: BLE001 - a shadow never disturbs the user
            entry = {
                "at": int(self.engine.clock()),
                "query": raw,
                "primary": primary,
                "error": str(exc),
            }
        with self._lock:
            with contextlib.suppress(OSError):
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                with self.log_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            with contextlib.suppress(Exception):
                figures = state.get_json(self.engine.store, state.META_SHADOW) or {}
                figures["count"] = int(figures.get("count", 0)) + 1
                if "error" in entry:
                    figures["errors"] = int(figures.get("errors", 0)) + 1
                else:
                    figures["overlap_sum"] = (
                        float(figures.get("overlap_sum", 0.0)) + entry["overlap"]
                    )
                    figures["compared"] = int(figures.get("compared", 0)) + 1
                figures["last"] = entry
                state.set_json(self.engine.store, state.META_SHADOW, figures)

    def _count_fallback(self) -> None:
        with contextlib.suppress(Exception):
            figures = state.get_json(self.engine.store, state.META_SHADOW) or {}
            figures["fallbacks"] = int(figures.get("fallbacks", 0)) + 1
            state.set_json(self.engine.store, state.META_SHADOW, figures)

    def wait(self, timeout: float = 5.0) -> None:
        """Let running shadow comparisons finish (tests; and at exit)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _with_notice(result: SearchResult, notice: str) -> SearchResult:
    return SearchResult(
        result.query, result.hits, (*result.notices, notice), result.mode, result.timings_ms
    )


def install(engine: Any, config: MeiliConfig) -> tuple[DualWriter, Router] | None:
    """Attach the dual writer and the read router to an engine (until the cut-over)."""
    if state.get_json(engine.store, state.META_FINISHED):
        return None
    writer = DualWriter(engine, config)
    engine.observe_writes(writer)
    router = Router(engine, config)
    engine.route_searches(router)
    atexit.register(router.wait, config.timeout)
    return writer, router
