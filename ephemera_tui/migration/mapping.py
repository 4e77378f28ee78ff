"""Which document fields become which memory fields — chosen the way MeiliSearch searched them.

Targets: ``content`` (required; may take several fields), ``created_at`` (Unix seconds,
milliseconds or ISO 8601), ``source``, ``tags`` (may take several fields), ``importance``,
``confidence``, ``notes``; ``keep`` keeps a field out of every target.

Without ``--map``, the content is what MeiliSearch searched: the index's
``searchableAttributes`` in their order, or — when that is ``["*"]`` (the default) — every
text field, most relevant first (a title-like field, then fields named like body text, then
the longest). The first field becomes the memory's first line. A date-like field
(``release_date``, ``createdAt``, …, checked against its values) becomes ``created_at``;
lists of short strings (``genres``) and filterable string fields become tags. Every other
field is written into the memory's notes as ``field: value`` lines, so ``ephemera show``
displays it, and the whole document is kept with its primary key for dual writing. Nothing
here ever stops on a field it cannot place: it picks the best candidate and says which.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.domain import (
    DEFAULT_CONFIDENCE,
    DEFAULT_IMPORTANCE,
    MAX_SOURCE_LEN,
    MAX_TAG_LEN,
    Draft,
)
from ..engine.errors import ValidationError
from ..engine.query import parse_timestamp

TARGETS = ("content", "created_at", "source", "tags", "importance", "confidence", "notes")
DEFAULT_SOURCE = "meilisearch"
INDEX_PREFIX = "meili:"  # the index a memory came from: its source, or a tag
SAMPLE = 1000  # documents looked at to choose the mapping

TITLE_NAMES = ("title", "name", "headline", "heading", "subject", "caption", "label")
BODY_NAMES = (
    "content",
    "text",
    "body",
    "message",
    "memory",
    "overview",
    "description",
    "summary",
    "synopsis",
    "plot",
    "abstract",
    "desc",
)

# Candidate field names per single-field target, most likely first (case-insensitive).
GUESSES: dict[str, tuple[str, ...]] = {
    "created_at": (
        "created_at",
        "createdat",
        "created",
        "timestamp",
        "date",
        "time",
        "datetime",
        "release_date",
        "releasedate",
        "released",
        "published_at",
        "publishedat",
        "published",
        "publication_date",
        "updated_at",
        "updatedat",
    ),
    "source": ("source", "origin", "channel", "category", "kind", "type"),
    "tags": ("tags", "labels", "keywords", "categories", "topics"),
    "importance": ("importance", "priority", "weight"),
    "confidence": ("confidence", "certainty"),
    "notes": ("notes", "note"),
}
DATE_NAME = re.compile(
    r"(^|_)(date|time|timestamp|datetime)$|_(at|on|date|time)$|[a-z](At|On|Date|Time)$"
    r"|^(date|released|published|created|updated|modified)",
)
URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
ISO_DATE = re.compile(
    r"^\d{4}-\d{2}(-\d{2})?([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)
MIN_TIME, MAX_TIME = -2_208_988_800, 4_102_444_800  # 1900 … 2100, in seconds


# ---------------------------------------------------------------------------------- options


def parse_map_options(values: Iterable[str]) -> dict[str, str]:
    """``field=target`` pairs (from ``--map`` or the config) → {field: target}, in order."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise ValidationError(f"--map {value!r}: write FIELD=TARGET, e.g. --map body=content")
        if target not in (*TARGETS, "keep"):
            raise ValidationError(
                f"--map {value!r}: unknown target {target!r} (one of {', '.join(TARGETS)}, keep)"
            )
        out.pop(name, None)
        out[name] = target
    return out


# ---------------------------------------------------------------------------------- field stats


@dataclass
class _Stats:
    """What the sample says about one top-level field."""

    name: str
    order: int
    present: int = 0  # non-null, non-empty
    strings: int = 0
    string_chars: int = 0
    max_len: int = 0
    urls: int = 0
    iso: int = 0
    numbers: int = 0
    times: int = 0  # numbers in a plausible Unix-time range (seconds or milliseconds)
    bytes: int = 0  # whole numbers 0-255
    lists: int = 0  # lists of strings
    items: int = 0
    short_items: int = 0  # at most 4 words and 40 characters
    long_items: int = 0  # longer than a tag may be
    other: int = 0

    @property
    def avg_len(self) -> float:
        return self.string_chars / self.strings if self.strings else 0.0

    def share(self, n: int) -> float:
        return n / self.present if self.present else 0.0


def _stats(docs: list[dict[str, Any]], primary_key: str) -> dict[str, _Stats]:
    out: dict[str, _Stats] = {}
    for doc in docs[:SAMPLE]:
        for name, value in doc.items():
            if name in (primary_key, "_vectors"):
                continue
            s = out.get(name)
            if s is None:
                s = out[name] = _Stats(name, len(out))
            if value is None or value == "" or value == []:
                continue
            s.present += 1
            if isinstance(value, bool):
                s.other += 1
            elif isinstance(value, str):
                s.strings += 1
                s.string_chars += len(value)
                s.max_len = max(s.max_len, len(value.strip()))
                stripped = value.strip()
                if URL.match(stripped):
                    s.urls += 1
                if ISO_DATE.match(stripped):
                    s.iso += 1
            elif isinstance(value, int | float):
                s.numbers += 1
                if MIN_TIME <= value <= MAX_TIME or MIN_TIME * 1000 <= value <= MAX_TIME * 1000:
                    s.times += 1
                if _as_byte(value) is not None:
                    s.bytes += 1
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                s.lists += 1
                s.items += len(value)
                s.short_items += sum(1 for v in value if len(v) <= 40 and len(v.split()) <= 4)
                s.long_items += sum(1 for v in value if len(v.strip()) > MAX_TAG_LEN)
            else:
                s.other += 1
    return out


def _is_text(s: _Stats) -> bool:
    """Mostly strings (or lists of strings), not URLs and not dates."""
    texty = s.strings + s.lists
    return (
        s.present > 0
        and texty * 2 >= s.present
        and s.urls < max(1, s.strings)
        and not (s.strings and s.iso == s.strings)
    )


def _is_tag_list(s: _Stats) -> bool:
    """Lists of short strings, a handful per document (``genres``, not ``cast``)."""
    return (
        s.lists > 0
        and s.lists * 10 >= s.present * 9
        and s.short_items * 10 >= s.items * 9
        and s.long_items == 0
        and s.items <= s.lists * 10
    )


def _is_time(s: _Stats) -> bool:
    if s.present == 0:
        return False
    return s.times + s.iso == s.present  # numbers in range and ISO strings, nothing else


def _is_short_string(s: _Stats, docs: list[dict[str, Any]]) -> bool:
    """Values that fit a tag: strings (or lists of them) of at most MAX_TAG_LEN characters."""
    if s.present == 0 or s.strings + s.lists < s.present:
        return False
    for doc in docs[:SAMPLE]:
        value = doc.get(s.name)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and len(v.strip()) > MAX_TAG_LEN for v in values):
            return False
    return True


# ---------------------------------------------------------------------------------- the map


@dataclass
class FieldMap:
    """target → document field(s), and why.

    ``fields`` holds the single field of each target (for ``content`` and ``tags``: the first
    of ``content``/``tags``). ``guessed`` lists the targets filled without ``--map``.
    """

    fields: dict[str, str] = field(default_factory=dict)
    content: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    split_tags: set[str] = field(default_factory=set)  # text values split on commas
    guessed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)  # --map FIELD=keep
    lenient: set[str] = field(default_factory=set)  # guessed targets: a bad value is skipped
    index_in: str = "source"  # where the index uid is recorded: source, or a tag
    explain: list[str] = field(default_factory=list)

    def source_of(self, target: str) -> str | None:
        return self.fields.get(target)

    def used(self) -> set[str]:
        """Fields that went into a target (the rest are written into the notes)."""
        return set(self.fields.values()) | {f.split(".")[0] for f in self.content} | set(self.tags)

    def to_dict(self) -> dict[str, Any]:
        """target → field, or a list of fields for a content or tags made of several."""
        out: dict[str, Any] = {}
        for target, name in self.fields.items():
            if target == "content" and len(self.content) > 1:
                out[target] = list(self.content)
            elif target == "tags" and len(self.tags) > 1:
                out[target] = list(self.tags)
            else:
                out[target] = name
        return out

    def writeback(self) -> dict[str, str]:
        """One field per target, for writing memories back to MeiliSearch (dual writing).

        Tags from several fields (or with the index tag) and notes (which also hold the other
        fields) cannot be split again, so they stay as imported; a content made of several
        fields is written into its first field.
        """
        out = dict(self.fields)
        if len(self.tags) > 1 or self.index_in == "tag":
            out.pop("tags", None)  # several fields, or the index tag: cannot be split again
        out.pop("notes", None)  # the notes also hold the other fields, as text
        return out


def build_mapping(
    docs: list[dict[str, Any]],
    explicit: dict[str, str],
    primary_key: str,
    settings: dict[str, Any] | None = None,
    index_uid: str | None = None,
) -> FieldMap:
    """Explicit ``{field: target}`` first, then what the index's settings and values say.

    ``index_uid`` only names the index in the explanation (the importer records it)."""
    settings = settings or {}
    fmap = FieldMap()
    for name, target in explicit.items():
        if target == "keep":
            fmap.kept.add(name)
        elif target == "content":
            fmap.content.append(name)
        elif target == "tags":
            fmap.tags.append(name)
            fmap.split_tags.add(name)
        else:
            if target in fmap.fields and fmap.fields[target] != name:
                raise ValidationError(
                    f"both {fmap.fields[target]!r} and {name!r} are mapped to {target}"
                )
            fmap.fields[target] = name
    sample = docs[:SAMPLE]
    stats = _stats(sample, primary_key)
    taken = set(fmap.fields.values()) | fmap.kept | set(fmap.content) | set(fmap.tags)
    taken |= {primary_key, "_vectors"}
    exact = {name.lower(): name for name in stats}

    # created_at, source, importance, confidence: a known name whose values fit
    for target in ("created_at", "source", "importance", "confidence"):
        if target in fmap.fields:
            continue
        found = _guess_single(target, stats, exact, taken)
        if found:
            fmap.fields[target] = found
            fmap.guessed.add(target)
            fmap.lenient.add(target)
            taken.add(found)

    searchable = _attribute_list(settings.get("searchableAttributes"))
    filterable = _filterable(settings.get("filterableAttributes"))

    # tags: a tag-named field, lists of short strings, filterable string fields
    if not fmap.tags:
        named = _guess_single("tags", stats, exact, taken)
        candidates = [named] if named else []
        fmap.split_tags.update(candidates)
        for s in sorted(stats.values(), key=lambda s: s.order):
            if s.name in taken or s.name.startswith("_") or s.name in candidates:
                continue
            if _is_tag_list(s) or (
                _matches(s.name, filterable) and _is_short_string(s, sample) and not _is_time(s)
            ):
                candidates.append(s.name)
        if candidates:
            fmap.tags = candidates
            fmap.guessed.add("tags")
            fmap.lenient.add("tags")
    if fmap.tags:
        fmap.fields["tags"] = fmap.tags[0]
    taken |= set(fmap.tags)

    # content: what MeiliSearch searched
    rule = "--map"
    if not fmap.content:
        if searchable is not None and "*" not in searchable:
            single = {fmap.fields.get(t) for t in ("created_at", "source", "importance")}
            single.add(fmap.fields.get("confidence"))
            fmap.content = [
                n
                for n in searchable
                if n not in (primary_key, "_vectors", *fmap.kept, *single) and _present(sample, n)
            ]
            rule = f"searchableAttributes {json.dumps(searchable)}"
        if not fmap.content:
            fmap.content = _rank_text(stats, taken | set(fmap.tags))
            rule = (
                'searchableAttributes ["*"]: every text field, most relevant first'
                if searchable is None or "*" in searchable
                else f"none of searchableAttributes {json.dumps(searchable)} is in the "
                "documents: every text field, most relevant first"
            )
        if not fmap.content:  # no text field at all: the best of what is left
            rest = [s for s in stats.values() if s.name not in taken and s.present]
            rest.sort(key=lambda s: (-(s.strings + s.lists), -s.present, s.order))
            fmap.content = [s.name for s in rest[:1]]
            rule = "no text field: the most filled field"
        fmap.guessed.add("content")
        fmap.lenient.add("content")
    if fmap.content:
        fmap.fields["content"] = fmap.content[0]
    taken |= {c.split(".")[0] for c in fmap.content}

    # notes: a field named notes, when it is not the only text
    if "notes" not in fmap.fields:
        named = _guess_single("notes", stats, exact, taken)
        if named and fmap.content:
            fmap.fields["notes"] = named
            fmap.guessed.add("notes")
    fmap.index_in = "tag" if "source" in fmap.fields else "source"
    _explain(fmap, rule, stats, primary_key, index_uid)
    return fmap


def _guess_single(
    target: str, stats: dict[str, _Stats], exact: dict[str, str], taken: set[str]
) -> str | None:
    names = [exact[c] for c in GUESSES[target] if c in exact]
    if target == "created_at":
        ordered = sorted(stats.values(), key=lambda s: s.order)
        patterned = [s.name for s in ordered if DATE_NAME.search(s.name)]
        later = [n for n in patterned if re.search(r"updat|modif", n, re.IGNORECASE)]
        names += [n for n in patterned if n not in later] + later
    for name in dict.fromkeys(names):
        s = stats[name]
        if name in taken or not s.present:
            continue
        if target == "created_at" and _is_time(s):
            return name
        if target == "source" and s.strings == s.present and s.max_len <= MAX_SOURCE_LEN:
            return name
        if target == "tags" and s.strings + s.lists == s.present:
            return name
        if target in ("importance", "confidence") and s.bytes == s.present:
            return name
        if target == "notes" and s.strings * 2 >= s.present:
            return name
    return None


def _rank_text(stats: dict[str, _Stats], taken: set[str]) -> list[str]:
    """Text fields, most relevant first: a title, fields named like body text, the longest."""
    texts = [
        s
        for s in stats.values()
        if s.name not in taken and not s.name.startswith("_") and _is_text(s)
    ]

    def rank(s: _Stats) -> tuple[int, int, float, int]:
        low = s.name.lower()
        if low in TITLE_NAMES:
            return (0, TITLE_NAMES.index(low), 0.0, s.order)
        if low in BODY_NAMES:
            return (1, BODY_NAMES.index(low), 0.0, s.order)
        if s.strings >= s.lists:
            return (2, 0, -s.avg_len, s.order)
        return (3, 0, -s.items / max(1, s.lists), s.order)  # lists of text after plain text

    texts.sort(key=rank)
    return [s.name for s in texts]


def _attribute_list(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return list(value)
    return None


def _filterable(value: Any) -> list[str]:
    """``filterableAttributes``: names, or (1.14+) ``{"attributePatterns": [...]}`` rules."""
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            patterns = item.get("attributePatterns")
            out.extend(p for p in patterns or [] if isinstance(p, str))
    return out


def _matches(name: str, patterns: list[str]) -> bool:
    return any(p == name or ("*" in p and fnmatch.fnmatchcase(name, p)) for p in patterns)


def _present(docs: list[dict[str, Any]], path: str) -> bool:
    return any(_get(doc, path) not in (None, "", []) for doc in docs)


def _get(doc: dict[str, Any], path: str) -> Any:
    """A field, or a nested one by dotted path (``author.name``) as MeiliSearch allows."""
    if path in doc:
        return doc[path]
    value: Any = doc
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list):
            value = [v.get(part) for v in value if isinstance(v, dict) and part in v]
        else:
            return None
    return value


def _explain(
    fmap: FieldMap, rule: str, stats: dict[str, _Stats], primary_key: str, index_uid: str | None
) -> None:
    def how(target: str) -> str:
        return "guessed" if target in fmap.guessed else "--map"

    if fmap.content:
        first, rest = fmap.content[0], fmap.content[1:]
        fields = f"{first} (first line)" + "".join(f", {n}" for n in rest)
        fmap.explain.append(f"content: {fields} — {rule}; change with --map FIELD=content")
    for target in ("created_at", "source", "importance", "confidence", "notes"):
        if target in fmap.fields:
            fmap.explain.append(f"{target}: {fmap.fields[target]} ({how(target)})")
    if fmap.tags:
        fmap.explain.append(f"tags: {', '.join(fmap.tags)} ({how('tags')})")
    where = "source" if fmap.index_in == "source" else "a tag"
    fmap.explain.append(f"index: recorded as {where} {index_label(index_uid or '<index uid>')}")
    rest = [n for n in stats if n not in fmap.used() and n != primary_key and stats[n].present]
    if rest:
        fmap.explain.append(f"into the notes: {', '.join(rest)}")


# ---------------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class Mapped:
    """One document turned into a memory: the draft, kept fields, vectors, a content hash."""

    primary_key: str
    draft: Draft
    has_created_at: bool
    extra: dict[str, Any]
    vectors: dict[str, list[list[float]]]
    regenerate: dict[str, bool]
    doc_hash: str
    vectors_problem: str | None = None
    content_fallback: bool = False
    skipped_values: tuple[str, ...] = ()  # guessed fields whose value here did not fit


def doc_hash(doc: dict[str, Any]) -> str:
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def index_label(index_uid: str) -> str:
    return f"{INDEX_PREFIX}{index_uid}"


def map_document(
    doc: dict[str, Any],
    fmap: FieldMap,
    primary_key: str,
    key: str,
    now: float,
    index_uid: str | None = None,
) -> Mapped:
    """Raise ValidationError naming the field when a value given with ``--map`` cannot be used;
    a guessed field whose value does not fit is left in the notes instead."""
    skipped: list[str] = []
    fields = fmap.fields

    def lenient(target: str, exc: ValidationError) -> None:
        if target not in fmap.lenient:
            raise exc
        skipped.append(fields[target])

    content, fallback = _content(doc, fmap, primary_key, key)
    created_at: int | None = None
    if "created_at" in fields:
        raw = doc.get(fields["created_at"])
        if raw not in (None, ""):
            try:
                created_at = _time(raw, now, f"{fields['created_at']!r} (created_at)")
            except ValidationError as exc:
                lenient("created_at", exc)
    source = DEFAULT_SOURCE
    label = index_label(index_uid) if index_uid else None
    if "source" in fields:
        raw = doc.get(fields["source"])
        if raw not in (None, ""):
            text = str(raw).strip()
            if len(text) > MAX_SOURCE_LEN:
                lenient(
                    "source",
                    ValidationError(
                        f"{fields['source']!r} (source) is longer than {MAX_SOURCE_LEN} characters"
                    ),
                )
            elif text:
                source = text
    elif label and len(label) <= MAX_SOURCE_LEN:
        source = label
    tags = list(_tags(doc, fmap, skipped))
    if label and (fmap.index_in == "tag" or len(label) > MAX_SOURCE_LEN):
        tags.append(label[:MAX_TAG_LEN])
    importance = _byte_field(doc, fmap, "importance", DEFAULT_IMPORTANCE, lenient)
    confidence = _byte_field(doc, fmap, "confidence", DEFAULT_CONFIDENCE, lenient)
    notes = _notes(doc, fmap, primary_key, skipped)
    draft = Draft(
        content=content,
        created_at=created_at if created_at is not None else int(now),
        source=source,
        importance=importance,
        confidence=confidence,
        tags=tuple(dict.fromkeys(tags)),
        notes=notes,
    )
    problem: str | None = None
    try:
        vectors, regenerate = read_vectors(doc.get("_vectors"))
    except ValidationError as exc:
        vectors, regenerate, problem = {}, {}, str(exc)
    extra = {k: v for k, v in doc.items() if k != primary_key and (k != "_vectors" or problem)}
    return Mapped(
        key,
        draft,
        created_at is not None,
        extra,
        vectors,
        regenerate,
        doc_hash(doc),
        problem,
        fallback,
        tuple(skipped),
    )


def _time(value: Any, now: float, where: str) -> int:
    stripped = value.strip() if isinstance(value, str) else ""
    if stripped and not ISO_DATE.match(stripped) and not re.fullmatch(r"-?\d+(\.\d+)?", stripped):
        raise ValidationError(f"{where}: cannot understand the time {value!r}")
    return parse_timestamp(value, now, where)


def _text(value: Any) -> str:
    """A field value as searchable text ('' for nothing usable)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return ", ".join(t for t in (_text(v) for v in value) if t)
    return ""


def _content(doc: dict[str, Any], fmap: FieldMap, primary_key: str, key: str) -> tuple[str, bool]:
    """The content fields' text, one per line (the first: the title); else a fallback."""
    lines = [t for t in (_text(_get(doc, name)) for name in fmap.content) if t]
    if lines:
        return "\n".join(lines), False
    if "content" not in fmap.lenient and fmap.content:  # chosen with --map: say so
        names = ", ".join(map(repr, fmap.content))
        raws = [_get(doc, name) for name in fmap.content]
        if all(raw is None for raw in raws):
            raise ValidationError(f"no text: field {names} (content) is missing")
        if not any(isinstance(raw, str | list) for raw in raws):
            kind = type(next(r for r in raws if r is not None)).__name__
            raise ValidationError(f"field {names} (content) must be text, got {kind}")
        raise ValidationError(f"no text: field {names} (content) is empty")
    # No text where the index kept it: any other text, else the fields themselves.
    others = [
        _text(v)
        for k, v in doc.items()
        if k not in (primary_key, "_vectors") and not k.startswith("_") and isinstance(v, str)
    ]
    others = [t for t in others if t]
    if others:
        return "\n".join(others), True
    rendered = _render(doc, {primary_key, "_vectors"})
    return (rendered or f"{primary_key}: {key}"), True


def _render(doc: dict[str, Any], skip: set[str]) -> str:
    lines: list[str] = []
    for name, value in doc.items():
        if name in skip or value is None or value == "" or value == []:
            continue
        if isinstance(value, str):
            shown = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            shown = ", ".join(value)
        else:
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


def _notes(doc: dict[str, Any], fmap: FieldMap, primary_key: str, skipped: list[str]) -> str | None:
    """The mapped notes field, then every field no target took, as ``field: value`` lines."""
    parts: list[str] = []
    name = fmap.fields.get("notes")
    if name is not None:
        value = doc.get(name)
        if isinstance(value, str) and value.strip():
            parts.append(value)
        elif value not in (None, "", []):
            parts.append(json.dumps(value, ensure_ascii=False))
    used = fmap.used() - set(skipped)
    rest = _render(doc, used | {primary_key, "_vectors"})
    if rest:
        parts.append(rest)
    return "\n\n".join(parts) or None


def _as_byte(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= 255:
        return value
    return None


def _byte_field(
    doc: dict[str, Any], fmap: FieldMap, target: str, default: int, lenient: Any
) -> int | None:
    name = fmap.fields.get(target)
    value = doc.get(name) if name is not None else None
    if value is None:
        return default
    number = _as_byte(value)
    if number is None:
        lenient(
            target,
            ValidationError(
                f"field {name!r} ({target}) must be a whole number 0-255, got {value!r}"
            ),
        )
        return default
    return number


def _tags(doc: dict[str, Any], fmap: FieldMap, skipped: list[str]) -> list[str]:
    out: list[str] = []
    for name in fmap.tags:
        value = doc.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, str):
            value = value.replace(";", ",").split(",") if name in fmap.split_tags else [value]
        if not isinstance(value, list):
            if "tags" in fmap.lenient:
                skipped.append(name)
                continue
            raise ValidationError(f"field {name!r} (tags) must be a list or text, got {value!r}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                if "tags" in fmap.lenient:
                    continue
                raise ValidationError(f"field {name!r} (tags) holds {item!r}, not text")
            tag = "-".join(str(item).split())
            if tag and len(tag) <= MAX_TAG_LEN:
                out.append(tag)
    return out


def read_vectors(value: Any) -> tuple[dict[str, list[list[float]]], dict[str, bool]]:
    """``_vectors`` in any of the shapes MeiliSearch writes, per embedder name.

    ``{"embeddings": [[…]] | […], "regenerate": bool}``, a flat list (one vector) or a list of
    lists, and ``null``/``[]``/``{}`` (no vector). Anything else raises ValidationError (the
    importer then embeds the document again and keeps ``_vectors`` among its fields).
    """
    vectors: dict[str, list[list[float]]] = {}
    regenerate: dict[str, bool] = {}
    if value is None:
        return vectors, regenerate
    if not isinstance(value, dict):
        raise ValidationError("_vectors is not an object of embedder → vectors")
    for name, entry in value.items():
        embeddings = entry
        if isinstance(entry, dict):
            embeddings = entry.get("embeddings")
            if isinstance(entry.get("regenerate"), bool):
                regenerate[name] = entry["regenerate"]
        vectors[name] = _embeddings(name, embeddings)
    return vectors, regenerate


def _embeddings(name: str, value: Any) -> list[list[float]]:
    if value is None or value == []:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"_vectors.{name} is not a list of numbers")
    if all(_number(v) for v in value):
        return [[float(v) for v in value]]
    if all(isinstance(v, list) and v and all(_number(x) for x in v) for v in value):
        return [[float(x) for x in v] for v in value]
    raise ValidationError(f"_vectors.{name} holds something other than numbers")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
