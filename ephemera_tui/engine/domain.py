"""Plain domain objects the engine returns (never ORM rows): memories, drafts, hits, stats."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from .dates import check_timestamp
from .errors import ValidationError
from .filters import fold_tag

MAX_SOURCE_LEN = 50
MAX_TAG_LEN = 100
MAX_TEXT_BYTES = 1 << 20
"""The most a memory's content (and, separately, its notes) may hold: 1 MiB of UTF-8, on
every backend (MySQL's MEDIUMTEXT takes 16 MiB, SQLite more), so any journal restores into
any backend."""
MAX_ID = (1 << 63) - 1
"""Ids (and link targets) are signed 64-bit integers in every database."""
# Characters that drive a terminal or reorder what it shows: C0 and C1 controls, DEL, and the
# bidirectional embeddings, overrides and isolates. Refused in tags and sources (one-line
# labels); content and notes keep them and every human-readable output escapes them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
DEFAULT_SOURCE = "note"
DEFAULT_IMPORTANCE = 128
DEFAULT_CONFIDENCE = 128


@dataclass(frozen=True, slots=True)
class Memory:
    """One memory fragment, as stored.

    ``id`` is the millisecond timestamp of when it was recorded; ``created_at`` is the Unix time
    (seconds) of when it happened, which may be back-dated.
    """

    id: int
    content: str
    created_at: int
    source: str
    importance: int | None
    confidence: int | None
    tags: tuple[str, ...] = ()
    notes: str | None = None
    associations: tuple[int, ...] = ()
    revision: int = 1  # counts its edits; an edit names the revision it started from

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used by the CLI, export and import."""
        return {
            "id": self.id,
            "content": self.content,
            "created_at": self.created_at,
            "source": self.source,
            "importance": self.importance,
            "confidence": self.confidence,
            "tags": list(self.tags),
            "notes": self.notes,
            "associations": list(self.associations),
        }


MEMORY_FIELDS: tuple[str, ...] = tuple(
    name for name in Memory.__dataclass_fields__ if name != "revision"
)  # the seed's columns, in order


def content_hash(content: str) -> str:
    """Short stable hash of a memory's text; the vector payload carries it to detect staleness."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def is_control(ch: str) -> bool:
    """A C0/C1 control, DEL, or a bidirectional control (U+202E and its kin)."""
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or ch in _BIDI_CONTROLS


def escape_controls(text: str, keep: str = "") -> str:
    """``text`` with every control character (see :func:`is_control`) but those in ``keep``
    written as a visible escape (``\\x1b``, ``\\u202e``), and lone surrogates as ``\\udXXX``:
    stored text can then never drive or reorder a terminal, and nothing is hidden."""
    if text.isprintable() and not any(ch in _BIDI_CONTROLS for ch in text):
        return text  # the common case, fast
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in keep or not (is_control(ch) or 0xD800 <= code <= 0xDFFF):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def check_text(name: str, value: str, max_bytes: int | None = None) -> str:
    """``value`` if it is valid Unicode (no lone surrogate, which no database stores) and
    fits ``max_bytes`` of UTF-8; a ValidationError naming ``name`` otherwise."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad = ord(value[exc.start])
        raise ValidationError(
            f"{name}: character {exc.start + 1} is not valid Unicode (U+{bad:04X}: a lone "
            "surrogate, or bytes that are not UTF-8)"
        ) from None
    if max_bytes is not None and size > max_bytes:
        raise ValidationError(
            f"{name} is {size:,} bytes of UTF-8; the limit is {max_bytes:,} (1 MiB)"
        )
    return value


def check_label(name: str, value: str) -> str:
    """A one-line label (a tag, a source): valid Unicode without control characters."""
    check_text(name, value)
    for position, ch in enumerate(value, start=1):
        if is_control(ch):
            raise ValidationError(
                f'{name} "{escape_controls(value)[:40]}": character {position} is a control '
                f"character (U+{ord(ch):04X})"
            )
    return value


def check_id(value: object, what: str = "id") -> int:
    """A memory id: a whole number from 1 to 2^63-1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise ValidationError(f"{what} must be a whole number from 1 to {MAX_ID}, got {value!r}")
    return value


def _check_byte(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number from 0 to 255, got {value!r}")
    if not 0 <= value <= 255:
        raise ValidationError(f"{name} must be from 0 to 255, got {value}")
    return value


def normalise_tags(tags: object) -> tuple[str, ...]:
    """Validate tags: a list of non-empty strings, trimmed, de-duplicated in order by their
    folded form (:func:`.filters.fold_tag`, the form every tag filter compares), so a memory
    never carries two tags one filter cannot tell apart, and never loses one a filter can."""
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, list | tuple):
        raise ValidationError(f"tags must be a list of strings, got {tags!r}")
    seen: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, str):
            raise ValidationError(f"tags must be strings, got {tag!r}")
        clean = tag.strip()
        if not clean:
            raise ValidationError("tags must not be empty")
        check_label("tag", clean)
        if len(clean) > MAX_TAG_LEN:
            raise ValidationError(f"tag {clean[:20]!r}… is longer than {MAX_TAG_LEN} characters")
        if any(c.isspace() for c in clean):
            raise ValidationError(f"tag {clean!r} must not contain spaces")
        seen.setdefault(fold_tag(clean), clean)
    return tuple(seen.values())


def normalise_associations(ids: object) -> tuple[int, ...]:
    if ids is None:
        return ()
    if isinstance(ids, str) or not isinstance(ids, list | tuple):
        raise ValidationError(f"associations must be a list of memory ids, got {ids!r}")
    out: dict[int, None] = {}
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise ValidationError(f"association {value!r} is not a memory id")
        out.setdefault(value, None)
    return tuple(out)


def _sequence(name: str, value: object) -> list[object]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValidationError(f"{name} must be a list, got {value!r}")
    return list(value)


@dataclass(frozen=True, slots=True)
class Draft:
    """What a user writes: a memory before it has an id. Validated on construction."""

    content: str
    created_at: int | None = None
    source: str = DEFAULT_SOURCE
    importance: int | None = DEFAULT_IMPORTANCE
    confidence: int | None = DEFAULT_CONFIDENCE
    tags: tuple[str, ...] = ()
    notes: str | None = None
    associations: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """Refuse here whatever any backend would refuse at write time, with the same limits
        everywhere, so a batch that validates is a batch that writes."""
        if not isinstance(self.content, str) or not self.content.strip():
            raise ValidationError("content must not be empty")
        check_text("content", self.content, MAX_TEXT_BYTES)
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValidationError("source must not be empty")
        if len(self.source.strip()) > MAX_SOURCE_LEN:
            raise ValidationError(f"source is longer than {MAX_SOURCE_LEN} characters")
        object.__setattr__(self, "source", check_label("source", self.source.strip()))
        _check_byte("importance", self.importance)
        _check_byte("confidence", self.confidence)
        if self.created_at is not None:
            if isinstance(self.created_at, bool) or not isinstance(self.created_at, int):
                raise ValidationError(f"created_at must be Unix seconds, got {self.created_at!r}")
            check_timestamp(self.created_at, "created_at")
        object.__setattr__(self, "tags", normalise_tags(_sequence("tags", self.tags)))
        object.__setattr__(
            self,
            "associations",
            normalise_associations(_sequence("associations", self.associations)),
        )
        if self.notes is not None:
            if not isinstance(self.notes, str):
                raise ValidationError("notes must be text")
            check_text("notes", self.notes, MAX_TEXT_BYTES)

    def with_changes(self, **changes: object) -> Draft:
        return replace(self, **changes)  # type: ignore[arg-type]

    @staticmethod
    def from_memory(memory: Memory) -> Draft:
        return Draft(
            content=memory.content,
            created_at=memory.created_at,
            source=memory.source,
            importance=memory.importance,
            confidence=memory.confidence,
            tags=memory.tags,
            notes=memory.notes,
            associations=memory.associations,
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result with the parts of its score, so the UI can say why it matched."""

    memory: Memory
    score: float
    semantic_score: float | None = None
    semantic_rank: int | None = None
    keyword_score: float | None = None
    keyword_rank: int | None = None
    matched_terms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        data = self.memory.to_dict()
        data.update(
            score=round(self.score, 6),
            semantic_score=None if self.semantic_score is None else round(self.semantic_score, 6),
            semantic_rank=self.semantic_rank,
            keyword_score=None if self.keyword_score is None else round(self.keyword_score, 6),
            keyword_rank=self.keyword_rank,
        )
        return data


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Hits plus one-line notices (e.g. "vector store busy: keyword results only")."""

    query: str
    hits: tuple[Hit, ...]
    notices: tuple[str, ...] = ()
    mode: str = "hybrid"  # hybrid | keyword | semantic | browse
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Result of cross-checking SQL against the vector store."""

    checked: int
    missing: tuple[int, ...]
    orphaned: tuple[int, ...]
    stale: tuple[int, ...]
    wrong_model: tuple[int, ...]
    pending: int
    repaired: int = 0
    vector_status: str = "ok"

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.orphaned) + len(self.stale) + len(self.wrong_model)

    def to_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "missing": list(self.missing),
            "orphaned": list(self.orphaned),
            "stale": list(self.stale),
            "wrong_model": list(self.wrong_model),
            "pending": self.pending,
            "repaired": self.repaired,
            "problems": self.problems,
            "vector_status": self.vector_status,
        }


@dataclass(frozen=True, slots=True)
class CacheStats:
    """The embedding cache's counters (this process)."""

    hits: int
    misses: int
    size: int


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Counts and health facts for ``ephemera stats`` and the status screen."""

    memories: int
    pending: int  # memories not yet searchable by meaning (outbox rows)
    outbox_oldest_age_s: float | None
    outbox_last_error: str | None
    vectors: int | None  # points in the active collection; None when it is not open here
    vector_backend: str  # "embedded", or the Qdrant URL with any password hidden
    vector_status: str
    collection: str
    embedding_model: str
    embedding_cache: CacheStats | None  # None until the model is loaded in this process
    database: str  # the URL with any password hidden
    data_dir: str
    tags: int
    last_check: int | None  # Unix seconds of the last ``ephemera check``

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``ephemera stats --json``)."""
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed."""

    seq: int
    memory_id: int | None
    op: str  # add, update, delete, link, restore, reembed
    revision: int | None
    at_ms: int


@dataclass(slots=True)
class SyncReport:
    """What one outbox drain did."""

    upserted: int = 0
    deleted: int = 0
    failed: int = 0
    remaining: int = 0
    error: str | None = None


@dataclass(slots=True)
class ImportReport:
    """What a bulk import did, line by line."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
