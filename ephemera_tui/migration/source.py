"""What every reader hands the importer: documents of one index, its settings, what was noticed.

Shared by the dump readers (:mod:`.dumps`) and the export readers (:mod:`.readers`): the
:class:`Source` record, the one-line :class:`MigrationError`, the bad-line collector and the
JSON helpers that name the file, the archive member and the line in every message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import ValidationError


class MigrationError(ValidationError):
    """A dump or export cannot be read; the message names the file and line."""


@dataclass(slots=True)
class SourceDoc:
    """One document and where it came from (for messages)."""

    where: str
    data: dict[str, Any]


@dataclass
class Source:
    """The documents of one index to import, after replaying enqueued tasks, plus notes."""

    kind: str  # dump | ndjson | json-array | json-object | pages | mixed
    path: Path
    index_uid: str
    primary_key: str
    documents: list[SourceDoc] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)  # every index the input holds
    dump_version: str | None = None
    db_version: str | None = None
    enqueued_documents: int = 0
    deleted_by_tasks: int = 0
    settings_from_tasks: int = 0
    notes: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # skipped bad lines (only with skip_bad)


class Bad:
    """Collects bad-line messages, or raises on the first when not skipping."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip_bad:
            raise MigrationError(message)
        self.messages.append(message)


def loads(text: str) -> Any:
    """``json.loads`` whose every failure is a JSONDecodeError: also values nested too deeply
    for the parser and numbers of thousands of digits (a hostile file breaks nothing else)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    except ValueError as exc:  # the int digit limit
        raise json.JSONDecodeError(str(exc).split(";")[0], text, 0) from None


def read_json_file(label: str, file: Path) -> Any:
    """One JSON value from ``file``; errors name ``label`` (``dump:member``) and the line."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MigrationError(f"{label}: not UTF-8 text") from None
    except OSError as exc:
        raise MigrationError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise MigrationError(
            f"{label}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def jsonl_lines(label: str, file: Path, bad: Bad) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of a JSON Lines file; bad lines go to ``bad``."""
    try:
        handle = file.open(encoding="utf-8")
    except OSError as exc:
        raise MigrationError(f"{label}: cannot read: {exc.strerror or exc}") from None
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):  # noqa: B007 - used after the loop
                if not line.strip():
                    continue
                try:
                    yield lineno, loads(line)
                except json.JSONDecodeError as exc:
                    bad(f"{label}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
        except UnicodeDecodeError:
            raise MigrationError(f"{label}:{lineno + 1}: not UTF-8 text") from None


def primary_key_value(value: Any) -> str | None:
    """A MeiliSearch document id as text: an integer, or a string of letters, digits, - and _."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if (
        isinstance(value, str)
        and 0 < len(value) <= 511
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
    ):
        return value
    return None


def infer_primary_key(docs: list[dict[str, Any]]) -> str | None:
    """MeiliSearch's own rule: the first attribute whose name contains ``id``."""
    for doc in docs[:1]:
        if "id" in doc:
            return "id"
        for name in doc:
            if "id" in name.lower():
                return name
    return None


def keyed(docs: list[SourceDoc], pk: str, bad: Bad) -> dict[str, SourceDoc]:
    """Documents by primary key value (the last one wins); a document without one is bad."""
    out: dict[str, SourceDoc] = {}
    for doc in docs:
        key = primary_key_value(doc.data.get(pk))
        if key is None:
            got = doc.data.get(pk)
            why = "no primary key" if got is None else "unusable primary key"
            bad(f"{doc.where}: {why} {pk!r} (got {got!r})")
            continue
        out.pop(key, None)
        out[key] = doc
    return out
