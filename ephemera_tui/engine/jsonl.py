"""The JSON Lines format of ``ephemera import`` and ``ephemera export --format jsonl``.

One object per line: ``content`` (required), ``created_at`` (Unix seconds, milliseconds or ISO
8601), ``source``, ``importance``, ``confidence``, ``tags``, ``notes``, ``associations``, optional
``id``. Errors name the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .domain import (
    DEFAULT_CONFIDENCE,
    DEFAULT_IMPORTANCE,
    DEFAULT_SOURCE,
    MEMORY_FIELDS,
    Draft,
    Memory,
)
from .errors import ValidationError
from .query import parse_timestamp

FIELDS = frozenset(MEMORY_FIELDS)


def draft_from_dict(data: Any, now: float) -> tuple[Draft, int | None]:
    """Validate one record; raise ValidationError saying which field is wrong."""
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s) {', '.join(unknown)}")
    if "content" not in data:
        raise ValidationError("missing required field 'content'")
    raw_id = data.get("id")
    if raw_id is not None and (
        isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id <= 0
    ):
        raise ValidationError(f"id must be a positive whole number, got {raw_id!r}")
    created = data.get("created_at")
    draft = Draft(
        content=data["content"]
        if isinstance(data["content"], str)
        else _bad("content", data["content"]),
        created_at=None if created is None else parse_timestamp(created, now),
        source=data.get("source") or DEFAULT_SOURCE,
        importance=data.get("importance", DEFAULT_IMPORTANCE),
        confidence=data.get("confidence", DEFAULT_CONFIDENCE),
        tags=tuple(data["tags"]) if isinstance(data.get("tags"), list) else _tags(data.get("tags")),
        notes=data.get("notes"),
        associations=tuple(data["associations"])
        if isinstance(data.get("associations"), list)
        else _assoc(data.get("associations")),
    )
    if draft.created_at is None:
        draft = draft.with_changes(created_at=int(now))
    return draft, raw_id


def _bad(name: str, value: Any) -> str:
    raise ValidationError(f"{name} must be text, got {value!r}")


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    raise ValidationError(f"tags must be a list of strings, got {value!r}")


def _assoc(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    raise ValidationError(f"associations must be a list of memory ids, got {value!r}")


def read_jsonl(
    path: Path, now: float, skip_bad: bool = False, errors: list[str] | None = None
) -> Iterator[tuple[Draft, int | None]]:
    """Yield validated records. A bad line raises ``ValidationError("FILE:LINE: …")`` unless
    ``skip_bad``, in which case its message goes to ``errors`` and the line is skipped."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):  # noqa: B007 - used after the loop
                if not line.strip():
                    continue
                try:
                    yield draft_from_dict(json.loads(line), now)
                except json.JSONDecodeError as exc:
                    message = f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                    if not skip_bad:
                        raise ValidationError(message) from exc
                    if errors is not None:
                        errors.append(message)
                except ValidationError as exc:
                    message = f"{path}:{lineno}: {exc}"
                    if not skip_bad:
                        raise ValidationError(message) from exc
                    if errors is not None:
                        errors.append(message)
        except UnicodeDecodeError:
            raise ValidationError(f"{path}:{lineno + 1}: not UTF-8 text") from None


def count_valid(path: Path, now: float) -> int:
    """Validate a whole file before anything is written (so a bad line writes nothing)."""
    return sum(1 for _ in read_jsonl(path, now))


def write_jsonl(memories: Iterable[Memory], out: TextIO) -> int:
    count = 0
    for memory in memories:
        out.write(json.dumps(memory.to_dict(), ensure_ascii=False) + "\n")
        count += 1
    return count


def write_markdown(memories: Iterable[Memory], out: TextIO) -> int:
    """A readable journal: one section per memory, newest last."""
    count = 0
    for memory in memories:
        when = datetime.fromtimestamp(memory.created_at).strftime("%Y-%m-%d %H:%M")
        out.write(f"## {when} · {memory.source} · #{memory.id}\n\n")
        out.write(memory.content.rstrip() + "\n\n")
        meta = [f"importance {memory.importance}", f"confidence {memory.confidence}"]
        if memory.tags:
            meta.append("tags: " + ", ".join(memory.tags))
        if memory.associations:
            meta.append("links: " + ", ".join(str(a) for a in memory.associations))
        out.write("*" + " · ".join(meta) + "*\n\n")
        if memory.notes:
            out.write("> " + memory.notes.rstrip().replace("\n", "\n> ") + "\n\n")
        count += 1
    return count
