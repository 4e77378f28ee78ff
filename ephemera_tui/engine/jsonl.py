"""The JSON Lines format of ``ephemera import`` and ``ephemera export --format jsonl``.

One object per line: ``content`` (required), ``created_at`` (Unix seconds, milliseconds or ISO
8601), ``source``, ``importance``, ``confidence``, ``tags``, ``notes``, ``associations``, optional
``id``. Errors name the file and line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from .dates import safe_local_datetime
from .domain import (
    DEFAULT_CONFIDENCE,
    DEFAULT_IMPORTANCE,
    DEFAULT_SOURCE,
    MEMORY_FIELDS,
    Draft,
    Memory,
    check_id,
    escape_controls,
)
from .errors import ValidationError
from .query import parse_timestamp

FIELDS = frozenset(MEMORY_FIELDS)
MAX_LINE_BYTES = 8 << 20
"""A line longer than this cannot hold a valid memory (content and notes are 1 MiB each)."""


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses what JSON does not have (NaN, Infinity) and turns every way
    a hostile line can make the parser fail (numbers of thousands of digits, arrays nested
    100,000 deep) into a ValidationError."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValidationError("not valid JSON here (nested too deeply)") from None
    except ValueError as exc:  # the int digit limit, a bad escape in bytes
        raise ValidationError(f"not valid JSON here ({str(exc).split(';')[0]})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _text(data: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text, got {_shown(value)}")
    return value


def _byte(data: dict[str, Any], name: str, default: int) -> int | None:
    if name not in data:
        return default
    value = data[name]
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # 200.0 is 200
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number from 0 to 255, got {_shown(value)}")
    return value


def _list(data: dict[str, Any], name: str, what: str) -> tuple[Any, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be a list of {what}, got {_shown(value)}")
    return tuple(value)


def _shown(value: Any) -> str:
    """A value for an error message, cut short (a hostile line may be megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def draft_from_dict(data: Any, now: float) -> tuple[Draft, int | None]:
    """Validate one record against everything any backend refuses; raise ValidationError
    saying which field is wrong."""
    if not isinstance(data, dict):
        raise ValidationError(f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s) {_shown(', '.join(unknown))}")
    if "content" not in data:
        raise ValidationError("missing required field 'content'")
    raw_id = data.get("id")
    if raw_id is not None:
        check_id(raw_id)
    created = data.get("created_at")
    draft = Draft(
        content=_text(data, "content") or "",
        created_at=int(now) if created is None else parse_timestamp(created, now),
        source=_text(data, "source") or DEFAULT_SOURCE,
        importance=_byte(data, "importance", DEFAULT_IMPORTANCE),
        confidence=_byte(data, "confidence", DEFAULT_CONFIDENCE),
        tags=_list(data, "tags", "strings"),
        notes=_text(data, "notes"),
        associations=_list(data, "associations", "memory ids"),
    )
    return draft, raw_id


@dataclass(frozen=True, slots=True)
class Record:
    """One valid line: where it was, the draft and its explicit id."""

    lineno: int
    draft: Draft
    memory_id: int | None


def iter_records(
    handle: IO[bytes],
    name: str,
    now: float,
    *,
    skip_bad: bool = False,
    errors: list[str] | None = None,
    skip_lines: frozenset[int] = frozenset(),
) -> Iterator[Record]:
    """Valid records of a binary stream, read line by line (nothing is copied anywhere).

    A bad line raises ``ValidationError("NAME:LINE: …")``, unless ``skip_bad``: its message
    then goes to ``errors`` and the line is skipped. Lines in ``skip_lines`` (found bad by an
    earlier pass) are skipped silently.
    """
    lineno = 0
    while True:
        try:
            raw = handle.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise ValidationError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        if not raw:
            return
        lineno += 1
        too_long = len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n")
        if too_long:
            while raw and not raw.endswith(b"\n"):  # the rest of the line
                raw = handle.readline(MAX_LINE_BYTES + 1)
        if lineno in skip_lines or (not too_long and not raw.strip()):
            continue
        try:
            if too_long:
                raise ValidationError(f"line longer than {MAX_LINE_BYTES:,} bytes")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError(f"not UTF-8 text (byte {exc.start + 1})") from None
            draft, memory_id = draft_from_dict(loads(text), now)
        except ValidationError as exc:
            message = f"{name}:{lineno}: {exc}"
            if not skip_bad:
                raise ValidationError(message) from exc
            if errors is not None:
                errors.append(message)
            continue
        yield Record(lineno, draft, memory_id)


def read_jsonl(
    path: Path,
    now: float,
    skip_bad: bool = False,
    errors: list[str] | None = None,
    *,
    survey: Survey | None = None,
) -> Iterator[tuple[Draft, int | None]]:
    """Yield validated records of a file. A bad line raises ``ValidationError("FILE:LINE: …")``
    unless ``skip_bad``, in which case its message goes to ``errors`` and the line is skipped.
    ``survey`` records every line for a later :meth:`Survey.resolve_links`."""
    seen: list[str] = [] if errors is None else errors
    with open_input(path) as handle:
        for record in iter_records(handle, str(path), now, skip_bad=skip_bad, errors=seen):
            if survey is not None:
                survey.add(record)
            yield record.draft, record.memory_id
    if survey is not None:
        survey.bad.update(_bad_lines(seen))


def _bad_lines(messages: list[str]) -> dict[int, str]:
    """``{line: message}`` from ``NAME:LINE: …`` messages."""
    out: dict[int, str] = {}
    for message in messages:
        head = message.split(": ", 1)[0]
        number = head.rsplit(":", 1)[-1]
        if number.isdigit():
            out[int(number)] = message
    return out


def open_input(path: Path) -> IO[bytes]:
    """Open an import file for reading; a ValidationError saying why it cannot be read."""
    try:
        if path.is_dir():
            raise ValidationError(f"{path}: is a directory, not a JSON Lines file")
        return path.open("rb")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def count_valid(path: Path, now: float) -> int:
    """Validate a whole file before anything is written (so a bad line writes nothing)."""
    return sum(1 for _ in read_jsonl(path, now))


@dataclass(slots=True)
class Survey:
    """What a validation pass found: valid lines, bad lines, and the links to resolve."""

    valid: int = 0
    bad: dict[int, str] = field(default_factory=dict)  # lineno -> message
    ids: dict[int, int] = field(default_factory=dict)  # explicit id -> lineno
    links: dict[int, tuple[int, ...]] = field(default_factory=dict)  # lineno -> link targets

    def add(self, record: Record) -> None:
        self.valid += 1
        if record.memory_id is not None:
            self.ids.setdefault(record.memory_id, record.lineno)
        if record.draft.associations:
            self.links[record.lineno] = record.draft.associations

    def resolve_links(self, name: str, exists: Callable[[list[int]], set[int]]) -> None:
        """Mark bad every line linking to an id that is neither in the journal (``exists``)
        nor on a good line of the file; repeated until no more lines fall out."""
        targets = sorted({t for links in self.links.values() for t in links} - set(self.ids))
        known: set[int] = set()
        for start in range(0, len(targets), 500):
            known |= exists(targets[start : start + 500])
        while True:
            present = {mid for mid, line in self.ids.items() if line not in self.bad} | known
            fallen = 0
            for line, links in self.links.items():
                if line in self.bad:
                    continue
                missing = [t for t in links if t not in present]
                if missing:
                    self.bad[line] = (
                        f"{name}:{line}: association {missing[0]} is not a memory in the "
                        "journal or in this file"
                    )
                    self.valid -= 1
                    fallen += 1
            if not fallen:
                return


# What json.dumps(ensure_ascii=False) leaves raw although a terminal acts on it: DEL, the C1
# controls (U+009B is a one-byte CSI), the bidirectional controls and lone surrogates.
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def dumps(value: Any, **options: Any) -> str:
    """JSON with text kept readable (not ``\\u`` escaped) except the characters a terminal
    acts on, which are escaped as JSON allows: the same data, safe to print."""
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def write_jsonl(memories: Iterable[Memory], out: TextIO) -> int:
    count = 0
    for memory in memories:
        out.write(dumps(memory.to_dict()) + "\n")
        count += 1
    return count


def write_markdown(memories: Iterable[Memory], out: TextIO) -> int:
    """A readable journal: one section per memory, newest last. Control characters in the
    stored text are written as visible escapes (the file is meant to be read, or cat)."""
    count = 0
    for memory in memories:
        when = safe_local_datetime(memory.created_at).strftime("%Y-%m-%d %H:%M")
        out.write(f"## {when} · {escape_controls(memory.source)} · #{memory.id}\n\n")
        out.write(escape_controls(memory.content.rstrip(), keep="\n\t") + "\n\n")
        meta = [f"importance {memory.importance}", f"confidence {memory.confidence}"]
        if memory.tags:
            meta.append("tags: " + escape_controls(", ".join(memory.tags)))
        if memory.associations:
            meta.append("links: " + ", ".join(str(a) for a in memory.associations))
        out.write("*" + " · ".join(meta) + "*\n\n")
        if memory.notes:
            notes = escape_controls(memory.notes.rstrip(), keep="\n\t")
            out.write("> " + notes.replace("\n", "\n> ") + "\n\n")
        count += 1
    return count
