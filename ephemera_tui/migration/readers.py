"""Read what MeiliSearch users bring: a dump or a documents export, into one list of documents.

- A **dump** (``.dump``): a gzip tar in the V6 layout — ``metadata.json`` (``dumpVersion``),
  ``indexes/<uid>/{metadata.json,settings.json,documents.jsonl}``, ``tasks/queue.jsonl`` and
  ``tasks/update_files/<task uid>.jsonl`` holding documents still enqueued when the dump was
  made. Enqueued document tasks of the chosen index are replayed in order (additions,
  updates, deletions, clears), so the result is what the index would hold once they ran.
- An **export**: NDJSON (one document per line), a JSON array of documents, or pages saved
  from ``GET /indexes/<uid>/documents`` (``{"results": [...], "offset", "limit", "total"}``)
  — one page per file, several per file (NDJSON or array), or a directory of such files.

Every error is one line naming the file (and the member of the archive) and the line.
Nothing is written here: the importer validates everything first.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import tempfile
import zlib
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
    """The documents to import, after replaying enqueued tasks, plus what was noticed."""

    kind: str  # dump | ndjson | json-array | json-object | pages
    path: Path
    index_uid: str
    primary_key: str
    documents: list[SourceDoc] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)
    dump_version: str | None = None
    db_version: str | None = None
    enqueued_documents: int = 0
    deleted_by_tasks: int = 0
    notes: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)  # skipped bad lines (only with skip_bad)


class _Bad:
    """Collects bad-line messages, or raises on the first when not skipping."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip_bad:
            raise MigrationError(message)
        self.messages.append(message)


def read_source(
    path: Path,
    index: str | None = None,
    primary_key: str | None = None,
    skip_bad: bool = False,
) -> Source:
    """Read a dump, an export file or a directory of saved pages."""
    path = Path(path)
    if not path.exists():
        raise MigrationError(f"{path}: no such file or directory")
    bad = _Bad(skip_bad)
    if path.is_dir():
        source = _read_export_dir(path, index, primary_key, bad)
    else:
        try:
            with path.open("rb") as handle:
                magic = handle.read(2)
        except OSError as exc:
            raise MigrationError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if magic == b"\x1f\x8b":
            source = _read_dump(path, index, primary_key, bad)
        else:
            source = _read_export_files([path], path, index, primary_key, bad)
    source.bad = bad.messages
    return source


# ---------------------------------------------------------------------------------- dumps


def _read_dump(path: Path, index: str | None, primary_key: str | None, bad: _Bad) -> Source:
    with tempfile.TemporaryDirectory(prefix="ephemera-meili-") as tmp:
        root = _extract(path, Path(tmp))
        return _read_dump_dir(path, root, index, primary_key, bad)


def _extract(path: Path, target: Path) -> Path:
    """Unpack the whole archive (so a truncated one fails before anything is read)."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = archive.getmembers()
            archive.extractall(target, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise MigrationError(
            f"{path}: truncated or corrupt dump archive ({exc or type(exc).__name__})"
        ) from None
    except OSError as exc:
        raise MigrationError(f"{path}: cannot unpack dump: {exc.strerror or exc}") from None
    if not (target / "metadata.json").exists():
        entries = [p for p in target.iterdir()]
        if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "metadata.json").exists():
            return entries[0]
    return target


def _read_json_member(path: Path, root: Path, name: str) -> Any:
    member = root / name
    try:
        text = member.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MigrationError(f"{path}:{name}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MigrationError(
            f"{path}:{name}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def _jsonl_lines(label: str, file: Path, bad: _Bad) -> Iterator[tuple[int, Any]]:
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
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    bad(f"{label}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
        except UnicodeDecodeError:
            raise MigrationError(f"{label}:{lineno + 1}: not UTF-8 text") from None


def _read_dump_dir(
    path: Path, root: Path, index: str | None, primary_key: str | None, bad: _Bad
) -> Source:
    if not (root / "metadata.json").is_file():
        raise MigrationError(f"{path}: not a MeiliSearch dump: metadata.json is missing")
    meta = _read_json_member(path, root, "metadata.json")
    if not isinstance(meta, dict) or "dumpVersion" not in meta:
        raise MigrationError(f"{path}:metadata.json:1: no dumpVersion: not a MeiliSearch dump")
    version = meta.get("dumpVersion")
    if version != "V6":
        raise MigrationError(
            f"{path}:metadata.json:1: unsupported dump version {version!r}: only V6 "
            "(MeiliSearch 1.x) is read; load it into MeiliSearch 1.x and create a new dump"
        )
    indexes_dir = root / "indexes"
    uids = (
        sorted(p.name for p in indexes_dir.iterdir() if p.is_dir()) if indexes_dir.is_dir() else []
    )
    if not uids:
        raise MigrationError(f"{path}:indexes/: the dump holds no index")
    if index is None:
        if len(uids) > 1:
            raise MigrationError(
                f"{path}: the dump holds indexes {', '.join(uids)}: choose one with --index"
            )
        index = uids[0]
    elif index not in uids:
        raise MigrationError(f"{path}: no index {index!r} in the dump (it holds {', '.join(uids)})")
    base = f"indexes/{index}"
    if not (root / base / "metadata.json").is_file():
        raise MigrationError(f"{path}:{base}/metadata.json: missing from the dump")
    index_meta = _read_json_member(path, root, f"{base}/metadata.json")
    if not isinstance(index_meta, dict):
        raise MigrationError(f"{path}:{base}/metadata.json:1: expected a JSON object")
    settings: dict[str, Any] = {}
    notes: list[str] = []
    if (root / base / "settings.json").is_file():
        loaded = _read_json_member(path, root, f"{base}/settings.json")
        settings = loaded if isinstance(loaded, dict) else {}
    else:
        notes.append(f"{base}/settings.json missing: no embedder settings known")
    docs_file = root / base / "documents.jsonl"
    if not docs_file.is_file():
        raise MigrationError(f"{path}:{base}/documents.jsonl: missing from the dump")

    raw_docs: list[SourceDoc] = []
    label = f"{path}:{base}/documents.jsonl"
    for lineno, value in _jsonl_lines(label, docs_file, bad):
        if not isinstance(value, dict):
            bad(f"{label}:{lineno}: expected a JSON object, got {type(value).__name__}")
            continue
        raw_docs.append(SourceDoc(f"{label}:{lineno}", value))

    tasks = _enqueued_tasks(path, root, index, bad, notes)
    pk = (
        primary_key
        or index_meta.get("primaryKey")
        or next((t[1].get("primary_key") for t in tasks if t[1].get("primary_key")), None)
        or infer_primary_key([d.data for d in raw_docs] + [d.data for t in tasks for d in t[2]])
    )
    if not pk:
        raise MigrationError(
            f"{path}:{base}/metadata.json: no primary key known: pass --primary-key"
        )
    source = Source(
        kind="dump",
        path=path,
        index_uid=index,
        primary_key=str(pk),
        settings=settings,
        indexes=uids,
        dump_version=str(version),
        db_version=str(meta.get("dbVersion")) if meta.get("dbVersion") else None,
        notes=notes,
    )
    by_key = _keyed(raw_docs, source.primary_key, bad)
    for uid, kind, docs, where in tasks:
        _replay(source, by_key, uid, kind, docs, where, bad)
    source.documents = list(by_key.values())
    return source


def _task_kind(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        name, body = next(iter(value.items()))
        return str(name), body if isinstance(body, dict) else {}
    return "unknown", {}


def _enqueued_tasks(
    path: Path, root: Path, index: str, bad: _Bad, notes: list[str]
) -> list[tuple[int, dict[str, Any], list[SourceDoc], str]]:
    """Enqueued tasks of ``index``, in order: (uid, kind body + name, documents, where)."""
    queue = root / "tasks" / "queue.jsonl"
    if not queue.is_file():
        notes.append("tasks/queue.jsonl missing: no enqueued tasks replayed")
        return []
    label = f"{path}:tasks/queue.jsonl"
    found: list[tuple[int, dict[str, Any], list[SourceDoc], str]] = []
    for lineno, task in _jsonl_lines(label, queue, bad):
        where = f"{label}:{lineno}"
        if not isinstance(task, dict) or not isinstance(task.get("uid"), int):
            bad(f"{where}: not a task (expected an object with a numeric uid)")
            continue
        if task.get("status") not in ("enqueued", "processing") or task.get("indexUid") != index:
            continue
        name, body = _task_kind(task.get("type"))
        body = {**body, "kind": name}
        docs: list[SourceDoc] = []
        if name == "documentImport":
            update = root / "tasks" / "update_files" / f"{task['uid']}.jsonl"
            update_label = f"{path}:tasks/update_files/{task['uid']}.jsonl"
            if not update.is_file():
                bad(
                    f"{where}: enqueued task {task['uid']} has no update file "
                    f"tasks/update_files/{task['uid']}.jsonl"
                )
                continue
            for doc_line, value in _jsonl_lines(update_label, update, bad):
                if not isinstance(value, dict):
                    bad(f"{update_label}:{doc_line}: expected a JSON object")
                    continue
                docs.append(SourceDoc(f"{update_label}:{doc_line}", value))
        found.append((int(task["uid"]), body, docs, where))
    found.sort(key=lambda t: t[0])
    return found


def _replay(
    source: Source,
    by_key: dict[str, SourceDoc],
    uid: int,
    kind: dict[str, Any],
    docs: list[SourceDoc],
    where: str,
    bad: _Bad,
) -> None:
    name = kind["kind"]
    if name == "documentImport":
        replace = kind.get("method") != "UpdateDocuments"
        for key, doc in _keyed(docs, source.primary_key, bad).items():
            source.enqueued_documents += 1
            if not replace and key in by_key:
                merged = {**by_key[key].data, **doc.data}
                by_key[key] = SourceDoc(doc.where, merged)
            else:
                by_key.pop(key, None)
                by_key[key] = doc
    elif name == "documentDeletion":
        for key in kind.get("documents_ids") or []:
            if by_key.pop(str(key), None) is not None:
                source.deleted_by_tasks += 1
    elif name in ("documentClear", "indexDeletion"):
        source.deleted_by_tasks += len(by_key)
        by_key.clear()
    elif name.startswith("document"):
        source.notes.append(f"enqueued task {uid} ({name}) cannot be replayed here: not applied")


def _keyed(docs: list[SourceDoc], pk: str, bad: _Bad) -> dict[str, SourceDoc]:
    out: dict[str, SourceDoc] = {}
    for doc in docs:
        key = primary_key_value(doc.data.get(pk))
        if key is None:
            bad(f"{doc.where}: no usable primary key {pk!r} (got {doc.data.get(pk)!r})")
            continue
        out.pop(key, None)
        out[key] = doc
    return out


def primary_key_value(value: Any) -> str | None:
    """A MeiliSearch document id as text: an integer, or a string of letters, digits, - and _."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    ok = isinstance(value, str) and 0 < len(value) <= 511
    if ok and all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
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


def _read_export_dir(path: Path, index: str | None, primary_key: str | None, bad: _Bad) -> Source:
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in (".json", ".jsonl", ".ndjson")
    )
    if not files:
        raise MigrationError(f"{path}: no .json, .jsonl or .ndjson files in this directory")
    return _read_export_files(files, path, index, primary_key, bad)


def _read_export_files(
    files: list[Path], path: Path, index: str | None, primary_key: str | None, bad: _Bad
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
    keyed = _keyed(docs, pk, bad)
    if len(keyed) < len(docs) - len(bad.messages):
        source.notes.append("some primary keys appear more than once: the last one wins")
    source.documents = list(keyed.values())
    return source


def _read_export_file(file: Path, docs: list[SourceDoc], pages: list[_Page], bad: _Bad) -> str:
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
            values = json.loads(text)
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
            value = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            _take(value, f"{file}:1", docs, pages, bad)
            return "json-object"
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad(f"{file}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        _take(value, f"{file}:{lineno}", docs, pages, bad)
    return "ndjson"


def _take(value: Any, where: str, docs: list[SourceDoc], pages: list[_Page], bad: _Bad) -> None:
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


def _check_pages(path: Path, pages: list[_Page], bad: _Bad) -> None:
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
