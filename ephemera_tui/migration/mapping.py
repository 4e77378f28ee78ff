"""Which document fields become which memory fields, and turning one document into a Draft.

Targets: ``content`` (required), ``created_at`` (Unix seconds, milliseconds or ISO 8601),
``source``, ``tags``, ``importance``, ``confidence``, ``notes``; ``keep`` keeps a field as an
unknown field even when a guess would have used it. Fields not mapped (other than the primary
key and ``_vectors``) are kept, not dropped: the importer stores them with the primary key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.domain import DEFAULT_CONFIDENCE, DEFAULT_IMPORTANCE, MAX_SOURCE_LEN, Draft
from ..engine.errors import ValidationError
from ..engine.query import parse_timestamp

TARGETS = ("content", "created_at", "source", "tags", "importance", "confidence", "notes")
DEFAULT_SOURCE = "meilisearch"

# Candidate field names per target, most likely first (compared case-insensitively).
GUESSES: dict[str, tuple[str, ...]] = {
    "content": ("content", "text", "body", "message", "memory", "description", "title", "name"),
    "created_at": (
        "created_at",
        "createdat",
        "created",
        "timestamp",
        "date",
        "time",
        "datetime",
        "published_at",
        "publishedat",
        "updated_at",
        "updatedat",
    ),
    "source": ("source", "origin", "channel", "category", "kind", "type"),
    "tags": ("tags", "labels", "keywords", "categories", "topics"),
    "importance": ("importance", "priority", "weight"),
    "confidence": ("confidence", "certainty"),
    "notes": ("notes", "note", "comment", "comments", "summary"),
}


@dataclass
class FieldMap:
    """target → document field. ``guessed`` lists the targets filled by guessing."""

    fields: dict[str, str] = field(default_factory=dict)
    guessed: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)  # fields the user asked to keep unmapped

    def source_of(self, target: str) -> str | None:
        return self.fields.get(target)

    def to_dict(self) -> dict[str, str]:
        return dict(self.fields)


def parse_map_options(values: Iterable[str]) -> dict[str, str]:
    """``field=target`` pairs (from ``--map`` or the config) → {field: target}."""
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
        out[name] = target
    return out


def build_mapping(
    docs: list[dict[str, Any]], explicit: dict[str, str], primary_key: str
) -> FieldMap:
    """Explicit ``{field: target}`` first, then guesses for the targets still open."""
    fmap = FieldMap()
    for name, target in explicit.items():
        if target == "keep":
            fmap.kept.add(name)
            continue
        if target in fmap.fields and fmap.fields[target] != name:
            raise ValidationError(
                f"both {fmap.fields[target]!r} and {name!r} are mapped to {target}"
            )
        fmap.fields[target] = name
    sample = docs[:200]
    counts: dict[str, int] = {}
    exact: dict[str, str] = {}
    for doc in sample:
        for name, value in doc.items():
            if value is not None:
                counts[name] = counts.get(name, 0) + 1
                exact.setdefault(name.lower(), name)
    taken = set(fmap.fields.values()) | fmap.kept | {primary_key, "_vectors"}
    for target in TARGETS:
        if target in fmap.fields:
            continue
        for candidate in GUESSES[target]:
            found = exact.get(candidate)
            if found is None or found in taken:
                continue
            name = found
            if target == "content" and counts.get(name, 0) * 2 < len(sample):
                continue
            if not _plausible(target, [d.get(name) for d in sample if d.get(name) is not None]):
                continue
            fmap.fields[target] = name
            fmap.guessed.add(target)
            taken.add(name)
            break
    if "content" not in fmap.fields:
        seen = ", ".join(sorted(counts)[:12]) or "none"
        raise ValidationError(
            f"cannot tell which field holds the text (fields seen: {seen}): "
            "pass --map FIELD=content"
        )
    return fmap


def _plausible(target: str, values: list[Any]) -> bool:
    if not values:
        return False
    if target == "content" or target == "notes":
        return sum(isinstance(v, str) for v in values) * 2 >= len(values)
    if target == "source":
        return all(isinstance(v, str) and len(v) <= MAX_SOURCE_LEN for v in values)
    if target == "tags":
        return all(isinstance(v, list | str) for v in values)
    if target in ("importance", "confidence"):
        return all(_as_byte(v) is not None for v in values)
    if target == "created_at":
        return all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in values)
    return True


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


def doc_hash(doc: dict[str, Any]) -> str:
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def map_document(
    doc: dict[str, Any], fmap: FieldMap, primary_key: str, key: str, now: float
) -> Mapped:
    """Raise ValidationError naming the field when a value cannot be used."""
    used = {primary_key, "_vectors"}
    values: dict[str, Any] = {}
    for target, name in fmap.fields.items():
        used.add(name)
        values[target] = doc.get(name)
    content = _content(values.get("content"), fmap.fields["content"])
    created = values.get("created_at")
    created_at = (
        parse_timestamp(created, now, f"{fmap.fields['created_at']!r} (created_at)")
        if created not in (None, "")
        else None
    )
    source = values.get("source")
    if source in (None, ""):
        source = DEFAULT_SOURCE
    elif not isinstance(source, str):
        source = str(source)
    if len(source.strip()) > MAX_SOURCE_LEN:
        raise ValidationError(
            f"{fmap.fields['source']!r} (source) is longer than {MAX_SOURCE_LEN} characters"
        )
    draft = Draft(
        content=content,
        created_at=created_at if created_at is not None else int(now),
        source=source,
        importance=_byte_field(values, fmap, "importance", DEFAULT_IMPORTANCE),
        confidence=_byte_field(values, fmap, "confidence", DEFAULT_CONFIDENCE),
        tags=_tags(values.get("tags"), fmap.fields.get("tags")),
        notes=_notes(values.get("notes")),
    )
    vectors, regenerate = read_vectors(doc.get("_vectors"))
    extra = {k: v for k, v in doc.items() if k not in used}
    return Mapped(key, draft, created_at is not None, extra, vectors, regenerate, doc_hash(doc))


def _content(value: Any, name: str) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        if value is None:
            raise ValidationError(f"no text: field {name!r} (content) is missing")
        raise ValidationError(f"field {name!r} (content) must be text, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"no text: field {name!r} (content) is empty")
    return value


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


def _byte_field(values: dict[str, Any], fmap: FieldMap, target: str, default: int) -> int | None:
    value = values.get(target)
    if value is None:
        return default
    number = _as_byte(value)
    if number is None:
        raise ValidationError(
            f"field {fmap.fields[target]!r} ({target}) must be a whole number 0-255, got {value!r}"
        )
    return number


def _tags(value: Any, name: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [p for p in value.replace(";", ",").split(",")]
    if not isinstance(value, list):
        raise ValidationError(f"field {name!r} (tags) must be a list or text, got {value!r}")
    out: list[str] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValidationError(f"field {name!r} (tags) holds {item!r}, not text")
        tag = "-".join(str(item).split())
        if tag:
            out.append(tag)
    return tuple(out)


def _notes(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    return json.dumps(value, ensure_ascii=False)


def read_vectors(value: Any) -> tuple[dict[str, list[list[float]]], dict[str, bool]]:
    """``_vectors`` in any of the shapes MeiliSearch writes, per embedder name.

    ``{"embeddings": [[…]] | […], "regenerate": bool}``, a flat list (one vector) or a list of
    lists, and ``null``/``[]``/``{}`` (no vector). Anything else raises ValidationError.
    """
    vectors: dict[str, list[list[float]]] = {}
    regenerate: dict[str, bool] = {}
    if value is None:
        return vectors, regenerate
    if not isinstance(value, dict):
        raise ValidationError(
            f"_vectors must be an object of embedder → vectors, got {value!r:.60}"
        )
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
        raise ValidationError(f"_vectors.{name}: expected a list of numbers, got {value!r:.60}")
    if all(_number(v) for v in value):
        return [[float(v) for v in value]]
    if all(isinstance(v, list) and v and all(_number(x) for x in v) for v in value):
        return [[float(x) for x in v] for v in value]
    raise ValidationError(f"_vectors.{name}: expected numbers or lists of numbers")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
