"""Read what MeiliSearch users bring: a dump or a documents export, as one Source per index.

- A **dump** (``.dump``, a gzip tar) of any version MeiliSearch has written, V1 (0.20) to V6
  (1.x): read by :mod:`.dumps`, one reader per layout. Tasks still enqueued or processing when
  the dump was made are replayed in order, so each index holds what MeiliSearch would have
  held once they ran.
- An **export**: NDJSON (one document per line), a JSON array of documents, or pages saved
  from ``GET /indexes/<uid>/documents`` (``{"results": [...], "offset", "limit", "total"}``)
  — one page per file, several per file (NDJSON or array), or a directory of such files.

Every error is one line naming the file (and the member of the archive) and the line.
Nothing is written here: the importer validates everything first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dumps import read_dump
from .source import (
    Bad,
    MigrationError,
    Source,
    SourceDoc,
    infer_primary_key,
    keyed,
    loads,
    primary_key_value,
)

__all__ = [
    "MigrationError",
    "Source",
    "SourceDoc",
    "infer_primary_key",
    "parse_index_option",
    "primary_key_value",
    "read_source",
    "read_sources",
]


def parse_index_option(values: Iterable[str] | str | None) -> list[str] | None:
    """``--index`` values (repeatable, comma-separated, or ``all``) → uids; None: not given."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not names:
        return None
    if "all" in names:
        return ["all"]
    return list(dict.fromkeys(names))


def read_sources(
    path: Path,
    index: Iterable[str] | str | None = None,
    primary_key: str | None = None,
    skip_bad: bool = False,
) -> list[Source]:
    """Every chosen index of a dump (default: all of them), or the one index of an export."""
    path = Path(path)
    if not path.exists():
        raise MigrationError(f"{path}: no such file or directory")
    wanted = parse_index_option(index)
    bad = Bad(skip_bad)
    if path.is_dir():
        sources = [_read_export_dir(path, _export_uid(wanted), primary_key, bad)]
    else:
        try:
            with path.open("rb") as handle:
                magic = handle.read(2)
        except OSError as exc:
            raise MigrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if magic == b"\x1f\x8b":
            sources = read_dump(path, wanted, primary_key, bad)
        elif path.suffix.lower() == ".dump":
            raise MigrationError(
                f"{path}: not a MeiliSearch dump (a .dump file is a gzip archive); "
                "truncated or corrupt"
            )
        else:
            sources = [_read_export_files([path], path, _export_uid(wanted), primary_key, bad)]
    if sources and bad.messages:
        sources[0].bad = bad.messages + sources[0].bad
    return sources


def read_source(
    path: Path,
    index: str | None = None,
    primary_key: str | None = None,
    skip_bad: bool = False,
) -> Source:
    """Exactly one index: a dump holding several needs ``index``."""
    sources = read_sources(path, index, primary_key, skip_bad)
    if len(sources) > 1:
        uids = ", ".join(s.index_uid for s in sources)
        raise MigrationError(f"{path}: the dump holds indexes {uids}: choose one with --index")
    return sources[0]


def _export_uid(wanted: list[str] | None) -> str | None:
    if wanted is None or wanted == ["all"]:
        return None
    if len(wanted) > 1:
        raise MigrationError(
            "an export holds one index: give one --index name (the uid to record it under)"
        )
    return wanted[0]


# ---------------------------------------------------------------------------------- exports


def _is_page(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("results"), list)
        and ("total" in value or "offset" in value or "limit" in value)
    )


@dataclass
class _Page:
    where: str
    offset: int | None
    total: int | None
    docs: list[SourceDoc]


def _read_export_dir(path: Path, index: str | None, primary_key: str | None, bad: Bad) -> Source:
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in (".json", ".jsonl", ".ndjson")
    )
    if not files:
        raise MigrationError(f"{path}: no .json, .jsonl or .ndjson files in this directory")
    return _read_export_files(files, path, index, primary_key, bad)


def _read_export_files(
    files: list[Path], path: Path, index: str | None, primary_key: str | None, bad: Bad
) -> Source:
    docs: list[SourceDoc] = []
    pages: list[_Page] = []
    kinds: set[str] = set()
    for file in files:
        kind = _read_export_file(file, docs, pages, bad)
        kinds.add(kind)
    if pages:
        docs.extend(d for page in pages for d in page.docs)
        _check_pages(path, pages, bad)
        kind = "pages"
    else:
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
    pk = primary_key or infer_primary_key([d.data for d in docs])
    if not pk:
        raise MigrationError(f"{path}: cannot tell the primary key: pass --primary-key")
    uid = index or (path.stem if path.is_file() else path.name)
    source = Source(kind=kind, path=path, index_uid=uid, primary_key=pk, indexes=[uid])
    by_key = keyed(docs, pk, bad)
    if len(by_key) < len(docs) - len(bad.messages):
        source.notes.append("some primary keys appear more than once: the last one wins")
    source.documents = list(by_key.values())
    return source


def _read_export_file(file: Path, docs: list[SourceDoc], pages: list[_Page], bad: Bad) -> str:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        where = exc.object[: exc.start].count(b"\n") + 1
        raise MigrationError(f"{file}:{where}: not UTF-8 text") from None
    except OSError as exc:
        raise MigrationError(f"{file}: cannot read: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise MigrationError(f"{file}:1: empty file")
    if stripped[0] == "[":
        try:
            values = loads(text)
        except json.JSONDecodeError as exc:
            raise MigrationError(
                f"{file}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "a broken JSON array cannot be partly read"
            ) from None
        for n, value in enumerate(values):
            _take(value, f"{file}: element {n}", docs, pages, bad)
        return "json-array"
    if stripped[0] == "{":
        try:
            value = loads(text)
        except json.JSONDecodeError:
            pass
        else:
            _take(value, f"{file}:1", docs, pages, bad)
            return "json-object"
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = loads(line)
        except json.JSONDecodeError as exc:
            bad(f"{file}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        _take(value, f"{file}:{lineno}", docs, pages, bad)
    return "ndjson"


def _take(value: Any, where: str, docs: list[SourceDoc], pages: list[_Page], bad: Bad) -> None:
    if _is_page(value):
        page_docs: list[SourceDoc] = []
        for n, item in enumerate(value["results"]):
            if isinstance(item, dict):
                page_docs.append(SourceDoc(f"{where}: results[{n}]", item))
            else:
                bad(f"{where}: results[{n}]: expected a JSON object")
        offset = value.get("offset")
        total = value.get("total")
        pages.append(
            _Page(
                where,
                offset if isinstance(offset, int) else None,
                total if isinstance(total, int) else None,
                page_docs,
            )
        )
    elif isinstance(value, dict):
        docs.append(SourceDoc(where, value))
    else:
        bad(f"{where}: expected a JSON object, got {type(value).__name__}")


def _check_pages(path: Path, pages: list[_Page], bad: Bad) -> None:
    """Saved pages must cover 0..total without a gap (a missing page would lose documents)."""
    totals = {p.total for p in pages if p.total is not None}
    if len(totals) > 1:
        bad(f"{path}: saved pages disagree on the total ({', '.join(map(str, sorted(totals)))})")
    if not totals or any(p.offset is None for p in pages):
        return
    total = max(totals)
    covered: set[int] = set()
    for page in pages:
        assert page.offset is not None
        covered.update(range(page.offset, page.offset + len(page.docs)))
    missing = sorted(set(range(total)) - covered)
    if missing:
        bad(
            f"{path}: the saved pages cover {total - len(missing)} of {total} documents "
            f"(missing offsets {_ranges(missing)}); save every page or pass --skip-bad"
        )


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts[:5]) + (" …" if len(parts) > 5 else "")
