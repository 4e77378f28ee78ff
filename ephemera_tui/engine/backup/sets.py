"""Backup sets: a consistent SQL dump, a vector snapshot and a manifest; restore; verify; retention.

A set is one directory ``ephemera-<UTC time>-<tag>/`` holding

- ``sql.sqlite`` (SQLite source: the online backup API) or ``sql.jsonl`` (MySQL/MariaDB source:
  every row read in one ``START TRANSACTION WITH CONSISTENT SNAPSHOT``, with a trailer line);
- ``vectors.jsonl.gz`` + ``vectors.f32`` (every point's id and payload, and its vector as raw
  float32, exported page by page while the store keeps serving: the embedded store, and a
  server that cannot snapshot) or
  ``vectors.snapshot`` (a Qdrant server: its snapshot API); or nothing, when the vector store
  was unavailable (restore then re-embeds). Sets made by earlier versions may hold
  ``vectors.tar.gz`` (the embedded shard's directory), which restore still loads;
- ``manifest.json``: format and version, counts, sha256 of every file, the highest memory id
  included, a digest of all memories, model name and versions. Written last; a set is created
  under a ``.partial`` name and renamed when complete.

Restore validates everything before touching the target, refuses a target that holds any
memory or vector, writes all SQL rows in one transaction, loads the vector snapshot when it
fits, and finishes with a cross-check that re-embeds whatever the snapshot lacks (a missing or
older snapshot) and drops vectors of memories not in the dump (a newer one).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from ..diskspace import DiskSpaceError, ensure_free, tree_bytes
from ..domain import MEMORY_FIELDS
from ..errors import EphemeraError, VectorStoreError
from ..files import sha256_file
from ..redact import redact
from ..store import CHANGES, FRAGMENTS, LINKS, META, OUTBOX, TAGS, tag_rows
from ..vectors import VectorStore

if TYPE_CHECKING:
    from ..core import Engine
    from ..embedder import CachedEmbedder

FORMAT = "ephemera-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SET_PREFIX = "ephemera-"
TABLES = ("memory_fragments", "memory_tags", "vector_outbox")
FRAGMENT_FIELDS = MEMORY_FIELDS
JSON_FIELDS = ("tags", "associations")
EXPORT_PAGE = 1000


class BackupError(EphemeraError):
    """A backup could not be made, or a set is unusable (with a one-line reason)."""


@dataclass(slots=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


@dataclass(slots=True)
class RestoreReport:
    memories: int = 0
    vectors_loaded: int = 0
    reembedded: int = 0
    removed: int = 0
    vector_source: str = "none"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "memories": self.memories,
            "vectors_loaded": self.vectors_loaded,
            "reembedded": self.reembedded,
            "removed": self.removed,
            "vector_source": self.vector_source,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------- helpers


def memory_record(row: dict[str, Any]) -> dict[str, Any]:
    """One fragment row as plain JSON values (the same shape from every dump kind)."""
    out = {name: row.get(name) for name in FRAGMENT_FIELDS}
    for name in JSON_FIELDS:
        value = out[name]
        if isinstance(value, str):
            value = json.loads(value)
        out[name] = list(value or [])
    out["id"] = int(out["id"] or 0)
    out["created_at"] = int(out["created_at"] or 0)
    return out


class MemoryDigest:
    """sha256 over every memory in id order: equal digests mean identical memories."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0
        self.max_id = 0

    def add(self, record: dict[str, Any]) -> None:
        self._hash.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        self._hash.update(b"\n")
        self.count += 1
        self.max_id = max(self.max_id, record["id"])

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def digest_engine(engine: Engine) -> MemoryDigest:
    """The digest of the memories an engine's database holds now."""
    digest = MemoryDigest()
    for memory in engine.iter_all():
        digest.add(memory_record({n: getattr(memory, n) for n in FRAGMENT_FIELDS}))
    return digest


def _versions(engine: Engine) -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {}
    for dist in ("ephemera-tui", "SQLAlchemy", "qdrant-edge-py", "qdrant-client", "fastembed"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    with contextlib.suppress(Exception), engine.store.read() as conn:
        from alembic.runtime.migration import MigrationContext

        out["schema_revision"] = MigrationContext.configure(conn).get_current_revision()
        if engine.store.is_mysql:
            out["server"] = conn.exec_driver_sql("SELECT VERSION()").scalar()
    return out


# ---------------------------------------------------------------------------- SQL dump


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("cannot back up an in-memory SQLite database")
    return Path(database)


def _dump_sqlite(engine: Engine, target: Path) -> None:
    source = sqlite3.connect(str(_sqlite_path(engine.store.url)), timeout=30)
    try:
        dest = sqlite3.connect(str(target))
        try:
            source.backup(dest)  # one consistent copy, taken while writers keep going
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup failed: {exc}") from exc
    finally:
        source.close()


def _dump_mysql(engine: Engine, target: Path) -> dict[str, Any] | None:
    """Dump the tables in one consistent snapshot; return the binlog position the snapshot
    stands at (None: the binlog is off), where point-in-time recovery starts."""
    from .binlog import start_snapshot

    counts: dict[str, int] = {}
    with engine.store.read() as base, target.open("w", encoding="utf-8") as out:
        conn = base.execution_options(isolation_level="REPEATABLE READ")
        position = start_snapshot(conn)
        out.write(
            json.dumps({"format": FORMAT, "kind": "sql-jsonl", "tables": list(TABLES)}) + "\n"
        )
        for name, tbl in zip(TABLES, (FRAGMENTS, TAGS, OUTBOX), strict=True):
            counts[name] = 0
            keys = list(tbl.primary_key.columns)
            result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                select(tbl).order_by(*keys)
            )
            for row in result.mappings():
                out.write(json.dumps({"t": name, "r": dict(row)}, ensure_ascii=False) + "\n")
                counts[name] += 1
        out.write(json.dumps({"end": True, "counts": counts}) + "\n")
    return position


def iter_dump(set_dir: Path, manifest: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (table, row) of a set's SQL dump, whichever backend made it."""
    info = manifest["sql"]
    path = set_dir / info["file"]
    if info["kind"] == "sqlite":
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as exc:
            raise BackupError(f"{path}: cannot open SQL dump: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            for name in TABLES:
                order = "id" if name == "memory_fragments" else "memory_id"
                for row in conn.execute(f"SELECT * FROM {name} ORDER BY {order}"):  # noqa: S608
                    yield name, dict(row)
        except sqlite3.Error as exc:
            raise BackupError(f"{path}: SQL dump unreadable: {exc}") from exc
        finally:
            conn.close()
        return
    if info["kind"] != "sql-jsonl":
        raise BackupError(f"{path}: unknown SQL dump kind {info['kind']!r}")
    ended = False
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            try:
                item = json.loads(line)
            except (ValueError, RecursionError):
                raise BackupError(f"{path}:{lineno}: SQL dump is truncated or corrupt") from None
            if lineno == 1:
                continue
            if not isinstance(item, dict):
                raise BackupError(f"{path}:{lineno}: expected an object, got {type(item).__name__}")
            if item.get("end"):
                ended = True
                break
            table, row = item.get("t"), item.get("r")
            if table not in TABLES or not isinstance(row, dict):
                raise BackupError(
                    f"{path}:{lineno}: expected {{t: one of {', '.join(TABLES)}, r: a row}}"
                )
            yield table, row
    if not ended:
        raise BackupError(f"{path}: SQL dump is truncated (no end marker)")


def _dump_summary(set_dir: Path, manifest: dict[str, Any]) -> tuple[dict[str, int], MemoryDigest]:
    counts = dict.fromkeys(TABLES, 0)
    digest = MemoryDigest()
    for name, row in iter_dump(set_dir, manifest):
        counts[name] += 1
        if name == "memory_fragments":
            digest.add(_valid_record(set_dir, row))
    return counts, digest


MAX_STORED_TEXT = 16 << 20
"""The most any backend stores in content or notes (MySQL's MEDIUMTEXT): a set restores into
either backend. New memories are held to the domain's smaller limit (1 MiB)."""


def _valid_record(set_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """A dumped memory row as :func:`memory_record`, refused (BackupError naming the memory)
    unless every database would store it: types, id and byte ranges, valid text, lengths."""
    from ..domain import MAX_ID, MAX_SOURCE_LEN, MAX_TAG_LEN

    where = f"backup set {set_dir}: memory {str(row.get('id'))[:30]}"
    try:
        record = memory_record(row)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise BackupError(f"{where}: unreadable row ({_reason(exc)})") from None

    def bad(field_name: str, what: str) -> BackupError:
        return BackupError(f"{where}: {field_name}: expected {what}")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not 0 < record["id"] <= MAX_ID:
        raise bad("id", f"a whole number from 1 to {MAX_ID}")
    if not -(1 << 62) < record["created_at"] < 1 << 62:
        raise bad("created_at", "Unix seconds")
    for name in ("importance", "confidence"):
        value = record[name]
        if value is not None and (not whole(value) or not 0 <= value <= 255):
            raise bad(name, "a whole number from 0 to 255")
    for name, limit, required in (
        ("content", MAX_STORED_TEXT, True),
        ("notes", MAX_STORED_TEXT, False),
        ("source", MAX_SOURCE_LEN * 4, True),
    ):
        value = record[name]
        if value is None and not required:
            continue
        if not isinstance(value, str):
            raise bad(name, "text")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise bad(name, "valid Unicode text") from None
        if size > limit or (name == "source" and len(value) > MAX_SOURCE_LEN):
            raise bad(
                name,
                f"text of at most {MAX_SOURCE_LEN if name == 'source' else limit:,} "
                f"{'characters' if name == 'source' else 'bytes'}",
            )
    for tag in record["tags"]:
        if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG_LEN:
            raise bad("tags", f"a list of tags of 1 to {MAX_TAG_LEN} characters")
        try:
            tag.encode("utf-8")
        except UnicodeEncodeError:
            raise bad("tags", "valid Unicode text") from None
    for target in record["associations"]:
        if not whole(target) or not 0 < target <= MAX_ID:
            raise bad("associations", "a list of memory ids")
    return record


# ---------------------------------------------------------------------------- vector snapshot


def _snapshot_edge(engine: Engine, set_dir: Path) -> dict[str, Any]:
    """The embedded store's points, exported page by page while it keeps serving: the shard
    is never closed, so search by meaning and capture go on during a backup (closing it meant
    keyword-only search during the copy, and at a million memories a pause of seconds on
    reopen)."""
    vectors = engine.vectors()
    if vectors is None:
        raise VectorStoreError(engine.vector_status)
    return _write_points(vectors, set_dir)


def _write_points(vectors: VectorStore, set_dir: Path) -> dict[str, Any]:
    """Every point: ids and payloads as JSON lines in ``vectors.jsonl.gz``, the vectors in the
    same order as raw little-endian float32 rows in ``vectors.f32`` (compressing them gains
    little and costs most of the time). Read in pages of ``EXPORT_PAGE``, so the store is held
    only for a moment at a time; points written meanwhile may or may not be included, and
    restore's cross-check settles them against SQL."""
    import numpy as np

    target, raw_target = set_dir / "vectors.jsonl.gz", set_dir / "vectors.f32"
    written, last, dim, total_rows = 0, -1, None, 0
    with (
        gzip.open(target, "wt", encoding="utf-8", compresslevel=1) as out,
        raw_target.open("wb") as raw,
    ):
        while page := vectors.export(last, EXPORT_PAGE):
            rows = np.vstack([vec for _, vec, _ in page]).astype("<f4")
            dim = int(rows.shape[1])
            raw.write(rows.tobytes())
            out.writelines(_point_line(pid, len(vec), payload) for pid, vec, payload in page)
            total_rows += len(rows)
            written += len(page)
            last = page[-1][0]
    return {
        "kind": "points",
        "file": target.name,
        "vectors_file": raw_target.name,
        "dim": dim,
        "points": written,
        "rows": total_rows,
    }


def _point_line(pid: int, rows: int, payload: dict[str, Any]) -> str:
    """One point's JSON line; ``n`` counts its rows in ``vectors.f32`` when it has more
    than one (a memory of several sentences, ``vectors/rows.py``)."""
    item: dict[str, Any] = {"id": pid, "p": payload}
    if rows > 1:
        item["n"] = rows
    return json.dumps(item, separators=(",", ":")) + "\n"


def _snapshot_client(engine: Engine, set_dir: Path) -> dict[str, Any]:
    vectors = engine.vectors()
    if vectors is None:
        raise VectorStoreError(engine.vector_status)
    client = getattr(vectors, "_client", None)
    url = engine.settings.qdrant_url or ""
    if client is not None and url.startswith(("http://", "https://")):
        try:  # Qdrant's snapshot API shard by shard, checksummed (vectors/server.py)
            info: dict[str, Any] = vectors.snapshot_into(set_dir)  # type: ignore[attr-defined]
            return info
        except Exception:  # noqa: BLE001 - fall back to exporting the points
            for leftover in set_dir.glob("vectors.shard*"):
                leftover.unlink(missing_ok=True)
    return _write_points(vectors, set_dir)


# ---------------------------------------------------------------------------- create


def create_backup(engine: Engine, dest_root: Path) -> BackupResult:
    """Write one complete backup set under ``dest_root`` and record it as the last backup.

    The set is private (folders 0700, files 0600). Refused, writing nothing, when
    ``dest_root`` is not a folder that can be written, or when its filesystem lacks room for
    a set the size of the journal plus the reserve of :mod:`..diskspace`.
    """
    try:
        if dest_root.exists() and not dest_root.is_dir():
            raise BackupError(f"{dest_root}: is a file, not a folder for backup sets")
        dest_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(
            f"{dest_root}: cannot create the backup folder: {exc.strerror or exc}"
        ) from exc
    try:
        ensure_free(dest_root, "backup", _estimate(engine))
    except DiskSpaceError as exc:
        raise BackupError(str(exc)) from exc
    now = engine.clock()
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{SET_PREFIX}{stamp}-{uuid.uuid4().hex[:6]}"
    partial = dest_root / f".partial-{name}"
    try:
        partial.mkdir(mode=0o700)
    except OSError as exc:
        raise BackupError(f"{dest_root}: cannot write a backup set: {exc.strerror or exc}") from exc
    try:
        binlog = None
        if engine.store.is_mysql:
            sql = {"kind": "sql-jsonl", "file": "sql.jsonl"}
            binlog = _dump_mysql(engine, partial / sql["file"])
        else:
            sql = {"kind": "sqlite", "file": "sql.sqlite"}
            _dump_sqlite(engine, partial / sql["file"])
        manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "sql": sql}
        if binlog is not None:
            manifest["binlog"] = binlog  # restore --until replays from here (binlog.py)
        counts, digest = _dump_summary(partial, manifest)
        vectors_info: dict[str, Any] | None
        vector_note = None
        try:
            if engine.settings.qdrant_url:
                vectors_info = _snapshot_client(engine, partial)
            else:
                vectors_info = _snapshot_edge(engine, partial)
        except VectorStoreError as exc:
            vectors_info, vector_note = None, redact(str(exc), engine.settings.qdrant_url)
        for file in partial.iterdir():
            file.chmod(0o600)
        files = {
            p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(partial.iterdir())
            if p.is_file()
        }
        manifest.update(
            {
                "created_at": now,
                "created_at_iso": datetime.fromtimestamp(now, UTC).isoformat(),
                "source_database": _describe(engine),
                "counts": {**counts, "memories": counts["memory_fragments"]},
                "max_memory_id": digest.max_id,
                "memories_sha256": digest.hexdigest(),
                "model": engine.embedder.name,
                "dim": engine.embedder.dim,
                "collection": engine.vector_collection(),
                "vectors": vectors_info,
                "vectors_note": vector_note,
                "files": files,
                "versions": _versions(engine),
            }
        )
        tmp_manifest = partial / f"{MANIFEST}.tmp"
        with os.fdopen(
            os.open(tmp_manifest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w"
        ) as out:
            out.write(json.dumps(manifest, indent=2, sort_keys=True))
        tmp_manifest.rename(partial / MANIFEST)
        final = dest_root / name
        partial.rename(final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupError(f"backup into {dest_root} failed: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    engine.store.set_meta(
        "last_backup",
        json.dumps(
            {
                "at": int(now),
                "path": str(final),
                "memories": counts["memory_fragments"],
                "max_memory_id": digest.max_id,
                "vectors": None if vectors_info is None else vectors_info["kind"],
            }
        ),
    )
    return BackupResult(final, manifest)


def _estimate(engine: Engine) -> int:
    """Bytes a new set will take, at most: the SQLite file (or a guess from the count on
    MySQL) and the embedded vector shard."""
    size = 0
    if engine.store.is_mysql:
        size += 2048 * engine.store.count()
    else:
        with contextlib.suppress(BackupError, OSError):
            size += _sqlite_path(engine.store.url).stat().st_size
    if not engine.settings.qdrant_url:
        size += tree_bytes(engine.vectors_path)
    return size


def _describe(engine: Engine) -> str:
    from ..store import describe_url

    return describe_url(engine.store.url)


# ---------------------------------------------------------------------------- validate


_HEX64 = frozenset("0123456789abcdef")


def _expect(set_dir: Path, name: str, what: str, value: Any) -> BackupError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "…"
    return BackupError(f"backup set {set_dir}: manifest field {name}: expected {what}, got {shown}")


def _plain_name(set_dir: Path, name: str, value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or "/" in value
        or "\\" in value
        or value in (".", "..")
    ):
        raise _expect(set_dir, name, "a file name inside the set", value)
    return value


def _count(set_dir: Path, name: str, value: Any, *, positive: bool = False) -> int:
    low = 1 if positive else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _expect(set_dir, name, f"a whole number of at least {low}", value)
    return value


def _sha(set_dir: Path, name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX64:
        raise _expect(set_dir, name, "a sha256 (64 lowercase hex digits)", value)
    return value


def check_manifest(raw: Any, set_dir: Path) -> dict[str, Any]:
    """Check a parsed manifest against the schema of its format version (version 1 is the
    only one); raise ``BackupError("backup set DIR: manifest field X: expected …")``.

    Version 1: ``format``, ``format_version``; ``sql`` {``kind``: sqlite | sql-jsonl,
    ``file``}; ``files`` {name: {``sha256``, ``bytes``}}; ``counts`` {table: n, ``memories``:
    n}; ``memories_sha256``; ``model``; ``created_at`` (Unix seconds); optional ``dim``,
    ``max_memory_id``, ``collection``, ``vectors`` (null, or {``kind``: points |
    qdrant-snapshot | edge-shard, ``file``, for points ``vectors_file``, ``dim``, ``points``}).
    """
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise BackupError(f"backup set {set_dir}: {MANIFEST} is not an Ephemera backup manifest")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise BackupError(
            f"backup set {set_dir}: backup format version {version!r} is not supported (this "
            f"build reads version {FORMAT_VERSION})"
        )
    for key in ("sql", "files", "counts", "memories_sha256", "model", "created_at"):
        if key not in raw:
            raise BackupError(f"backup set {set_dir}: manifest field {key}: missing")
    files = raw["files"]
    if not isinstance(files, dict) or not files:
        raise _expect(set_dir, "files", "an object of file name -> {sha256, bytes}", files)
    for name, info in files.items():
        _plain_name(set_dir, f"files.{name}", name)
        if not isinstance(info, dict):
            raise _expect(set_dir, f"files.{name}", "an object {sha256, bytes}", info)
        for key in ("sha256", "bytes"):
            if key not in info:
                raise BackupError(
                    f"backup set {set_dir}: manifest field files.{name}.{key}: missing"
                )
        _sha(set_dir, f"files.{name}.sha256", info["sha256"])
        _count(set_dir, f"files.{name}.bytes", info["bytes"])
    sql = raw["sql"]
    if not isinstance(sql, dict):
        raise _expect(set_dir, "sql", "an object {kind, file}", sql)
    if sql.get("kind") not in ("sqlite", "sql-jsonl"):
        raise _expect(set_dir, "sql.kind", "'sqlite' or 'sql-jsonl'", sql.get("kind"))
    if _plain_name(set_dir, "sql.file", sql.get("file")) not in files:
        raise _expect(set_dir, "sql.file", "a file listed in files", sql.get("file"))
    counts = raw["counts"]
    if not isinstance(counts, dict) or "memories" not in counts:
        raise _expect(set_dir, "counts", "an object of table -> count with 'memories'", counts)
    for key, value in counts.items():
        _count(set_dir, f"counts.{key}", value)
    _sha(set_dir, "memories_sha256", raw["memories_sha256"])
    if not isinstance(raw["model"], str) or not raw["model"].strip():
        raise _expect(set_dir, "model", "an embedding model name", raw["model"])
    created = raw["created_at"]
    if isinstance(created, bool) or not isinstance(created, int | float) or not 0 <= created < 1e11:
        raise _expect(set_dir, "created_at", "Unix seconds", created)
    for key in ("dim", "max_memory_id"):
        if raw.get(key) is not None:
            _count(set_dir, key, raw[key], positive=key == "dim")
    if raw.get("collection") is not None and not isinstance(raw["collection"], str):
        raise _expect(set_dir, "collection", "a collection name", raw["collection"])
    vectors = raw.get("vectors")
    if vectors is not None:
        if not isinstance(vectors, dict):
            raise _expect(set_dir, "vectors", "null or an object {kind, file, ...}", vectors)
        kind = vectors.get("kind")
        if kind not in ("points", "qdrant-snapshot", "edge-shard"):
            raise _expect(
                set_dir, "vectors.kind", "'points', 'qdrant-snapshot' or 'edge-shard'", kind
            )
        if _plain_name(set_dir, "vectors.file", vectors.get("file")) not in files:
            raise _expect(set_dir, "vectors.file", "a file listed in files", vectors.get("file"))
        if kind == "points":
            raw_file = vectors.get("vectors_file")
            if (
                raw_file is not None
                and _plain_name(set_dir, "vectors.vectors_file", raw_file) not in files
            ):
                raise _expect(set_dir, "vectors.vectors_file", "a file listed in files", raw_file)
            _count(set_dir, "vectors.points", vectors.get("points"))
            if vectors["points"] and raw_file is not None:
                _count(set_dir, "vectors.dim", vectors.get("dim"), positive=True)
    return raw


def load_manifest(set_dir: Path) -> dict[str, Any]:
    """Read and check a whole set; raise BackupError naming the first problem.

    Checks the manifest against its schema (:func:`check_manifest`), that every listed file
    exists with its size and sha256, that the SQL dump reads to the end with the counts and
    memory digest the manifest promises and rows a database accepts, and that the vector
    snapshot reads to the end (every line, every vector). Reads only the set; touches nothing
    else, so a set that passes restores without failing half-way.
    """
    path = set_dir / MANIFEST
    if not set_dir.is_dir():
        raise BackupError(f"{set_dir}: not a backup set directory")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{set_dir}: no {MANIFEST}: not a complete backup set (a folder of sets? "
            "`ephemera backup --list --to DIR` shows them)"
        ) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise BackupError(f"{path}: unreadable manifest: {str(exc)[:200]}") from exc
    manifest = check_manifest(raw, set_dir)
    for name, info in manifest["files"].items():
        file = set_dir / name
        if not file.is_file():
            raise BackupError(f"{file}: missing from the backup set")
        if file.stat().st_size != info["bytes"]:
            raise BackupError(
                f"{file}: size {file.stat().st_size} differs from the manifest's {info['bytes']} "
                "(truncated?)"
            )
        if sha256_file(file) != info["sha256"]:
            raise BackupError(f"{file}: checksum mismatch: the file is corrupt")
    counts, digest = _dump_summary(set_dir, manifest)
    if counts["memory_fragments"] != manifest["counts"].get("memories"):
        raise BackupError(
            f"{set_dir}: the SQL dump holds {counts['memory_fragments']} memories, the manifest "
            f"says {manifest['counts'].get('memories')}"
        )
    if digest.hexdigest() != manifest["memories_sha256"]:
        raise BackupError(f"{set_dir}: the memories in the SQL dump do not match the manifest")
    if manifest.get("vectors") is not None:
        _check_snapshot(set_dir, manifest["vectors"])
    return manifest


def _check_snapshot(set_dir: Path, info: dict[str, Any]) -> None:
    """Read a vector snapshot to the end as restore will, so a broken one is refused before
    the target is written (a checksum only proves the file is what was written)."""
    file = set_dir / info["file"]
    try:
        if info["kind"] == "points":
            points = rows = 0
            for _, vec, _ in _points_from_jsonl(set_dir, info):
                points += 1
                rows += len(vec) if getattr(vec, "ndim", 1) == 2 else 1
            if points != info["points"]:
                raise BackupError(
                    f"{file}: holds {points} points, the manifest says {info['points']}"
                )
            if info.get("vectors_file"):
                extra = (set_dir / info["vectors_file"]).stat().st_size - 4 * rows * int(
                    info.get("dim") or 0
                )
                if extra:
                    raise BackupError(
                        f"{set_dir / info['vectors_file']}: its size does not fit "
                        f"{rows} vectors of {info.get('dim')} dimensions"
                    )
        elif info["kind"] == "edge-shard":
            with tarfile.open(file, "r:gz") as tar:
                for member in tar:
                    tarfile.data_filter(member, str(set_dir))
    except BackupError:
        raise
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        tarfile.TarError,
        zlib.error,
    ) as exc:
        raise BackupError(f"{file}: vector snapshot unreadable: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


# ---------------------------------------------------------------------------- restore


def _target_vector_count(engine: Engine) -> int:
    """Points already in the target vector store (0 when it does not exist yet)."""
    if not engine.settings.qdrant_url:
        shard = engine.vectors_path
        if not shard.exists() or not any(shard.iterdir()):
            return 0
    vectors = engine.vectors()
    if vectors is None:
        raise BackupError(f"cannot inspect the target vector store: {engine.vector_status}")
    return vectors.count()


def resolve_set(path: Path) -> tuple[Path, str | None]:
    """The set ``path`` names: itself when it holds a manifest, else the newest complete set
    inside it (with a note saying which), else BackupError."""
    if (path / MANIFEST).is_file() or not path.is_dir():
        return path, None
    sets = list_backups(path)
    if not sets:
        raise BackupError(f"{path}: no {MANIFEST} and no backup sets inside")
    newest = sets[0][1]
    others = len(sets) - 1
    return newest, (
        f"{path} is a folder of backup sets: using the newest, {newest.name}"
        + (f" ({others} older {'set' if others == 1 else 'sets'} left alone)" if others else "")
    )


def restore_backup(engine: Engine, set_dir: Path) -> RestoreReport:
    """Rebuild an empty target (the engine's database and vector store) from a backup set.

    The whole set is read and checked first (:func:`load_manifest`); if anything fails after
    the SQL rows are written, the target is emptied again, so a second restore can run."""
    manifest = load_manifest(set_dir)
    store = engine.store
    if store.count() or store.pending_count():
        raise BackupError(
            f"target database {_describe(engine)} is not empty ({store.count()} memories); "
            "restore only into an empty database"
        )
    if _target_vector_count(engine):
        raise BackupError("target vector store is not empty; restore only into an empty one")
    report = RestoreReport()
    rows: dict[str, list[Any]] = {"memory_fragments": [], "memory_tags": [], "vector_outbox": []}
    with store.write() as conn:
        for name, row in iter_dump(set_dir, manifest):
            if name == "memory_fragments":
                row = memory_record(row)
                report.memories += 1
            elif name == "memory_tags":  # sets taken before tags kept a folded form have none
                (row,) = tag_rows([(int(row["memory_id"]), [row["tag"]])])
            rows[name].append(row)
            if len(rows[name]) >= 1000:
                conn.execute(insert(_table(name)), rows[name])
                rows[name].clear()
        for name, pending in rows.items():
            if pending:
                conn.execute(insert(_table(name)), pending)
        store.rebuild_links(conn)  # derived from the associations, so not in the set
        conn.execute(META.delete().where(META.c.key == "vector_model"))
        conn.execute(insert(META).values(key="vector_model", value=engine.embedder.name))
        conn.execute(insert(CHANGES).values(op="restore", at=int(engine.clock() * 1000)))
    try:
        _restore_vectors(engine, set_dir, manifest, report)
    except BaseException as exc:
        _empty_target(engine)
        if isinstance(exc, EphemeraError | OSError | ValueError | EOFError | zlib.error):
            raise BackupError(
                f"restore from {set_dir} failed after the SQL rows were written "
                f"({_reason(exc)}); the target was emptied again"
            ) from exc
        raise
    return report


def _empty_target(engine: Engine) -> None:
    """Undo a restore that failed half-way: no memory, tag, outbox row or vector is left."""
    with contextlib.suppress(Exception), engine.store.write() as conn:
        for table in (FRAGMENTS, TAGS, LINKS, OUTBOX):
            conn.execute(table.delete())
    with contextlib.suppress(Exception):
        vectors = engine.vectors()
        if vectors is not None:
            ids = [pid for pid, _ in vectors.scan(-1, 1 << 30)]
            vectors.delete(ids)


def _restore_vectors(
    engine: Engine, set_dir: Path, manifest: dict[str, Any], report: RestoreReport
) -> None:
    info = manifest.get("vectors")
    if info is None:
        report.notes.append("the set has no vector snapshot: re-embedding every memory")
    elif manifest["model"] != engine.embedder.name:
        report.notes.append(
            f"the snapshot's vectors were made by {manifest['model']!r}, the configured model is "
            f"{engine.embedder.name!r}: re-embedding every memory"
        )
    else:
        try:
            report.vectors_loaded = _load_vectors(engine, set_dir, info)
            report.vector_source = info["kind"]
        except (
            BackupError,
            VectorStoreError,
            OSError,
            EOFError,
            ValueError,
            zlib.error,
            tarfile.TarError,
        ) as exc:
            report.notes.append(f"vector snapshot not loaded ({_reason(exc)}): re-embedding")
    synced = engine.sync()
    checked = engine.check(repair=True)
    report.reembedded = (
        synced.upserted + len(checked.missing) + len(checked.stale) + len(checked.wrong_model)
    )
    report.removed = synced.deleted + len(checked.orphaned)
    if checked.vector_status != "ok":
        report.notes.append(
            f"vector store unavailable: {checked.vector_status}; run `ephemera sync`"
        )


def _table(name: str) -> Any:
    return {"memory_fragments": FRAGMENTS, "memory_tags": TAGS, "vector_outbox": OUTBOX}[name]


def _load_vectors(engine: Engine, set_dir: Path, info: dict[str, Any]) -> int:
    kind, file = info["kind"], set_dir / info["file"]
    if kind == "edge-shard" and not engine.settings.qdrant_url:
        shard = engine.vectors_path
        engine.release_vectors()
        if shard.exists():
            shutil.rmtree(shard)
        shard.mkdir(parents=True)
        with tarfile.open(file, "r:gz") as tar:
            tar.extractall(shard, filter="data")
        meta = shard.parent / f"{shard.name}.json"
        meta.write_text(json.dumps({"collection": shard.name, "dim": engine.embedder.dim}))
        engine.vector_manager.release(retry_now=True)
        vectors = engine.vectors()
        if vectors is None:
            raise VectorStoreError(engine.vector_status)
        return vectors.count()
    if kind == "edge-shard":
        return _upsert_points(engine, _points_from_shard(file))
    if kind == "points":
        return _upsert_points(engine, _points_from_jsonl(set_dir, info))
    if kind == "qdrant-snapshot" and engine.settings.qdrant_url:
        return _upload_snapshot(engine, file)
    raise BackupError(f"a {kind} snapshot cannot be loaded into this vector store")


def _points_from_jsonl(
    set_dir: Path, info: dict[str, Any]
) -> Iterator[tuple[int, Any, dict[str, Any]]]:
    """Points of a ``points`` snapshot: vectors from ``vectors.f32`` in line order, or (sets
    of earlier versions) inline in each line."""
    import numpy as np

    raw_name = info.get("vectors_file")
    width = 4 * int(info.get("dim") or 0)
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(gzip.open(set_dir / info["file"], "rt", encoding="utf-8"))
        raw = stack.enter_context((set_dir / raw_name).open("rb")) if raw_name else None
        for lineno, line in enumerate(handle, start=1):
            where = f"{set_dir / info['file']}:{lineno}"
            try:
                item = json.loads(line)
            except (ValueError, RecursionError):
                raise BackupError(f"{where}: not a JSON line (corrupt snapshot)") from None
            if not isinstance(item, dict):
                raise BackupError(f"{where}: expected an object {{id, p}}")
            pid = item.get("id")
            if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 1 << 63:
                raise BackupError(f"{where}: id: expected a memory id, got {pid!r}"[:200])
            payload = item.get("p")
            if not isinstance(payload, dict):
                raise BackupError(f"{where}: p: expected the point's payload object")
            if raw is None:
                vec = item.get("v")
                if not isinstance(vec, list) or not vec:
                    raise BackupError(f"{where}: v: expected the point's vector")
            else:
                count = item.get("n", 1)
                if isinstance(count, bool) or not isinstance(count, int) or not 0 < count < 4096:
                    raise BackupError(f"{where}: n: expected the point's row count, got {count!r}")
                chunk = raw.read(width * count)
                if len(chunk) != width * count or not width:
                    raise BackupError(f"{raw.name}: fewer vectors than points")
                vec = np.frombuffer(chunk, dtype="<f4")
                if count > 1:
                    vec = vec.reshape(count, -1)
            yield pid, vec, payload


def _points_from_shard(file: Path) -> Iterator[tuple[int, list[float], dict[str, Any]]]:
    import qdrant_edge as q

    with tempfile.TemporaryDirectory(prefix="ephemera-unpack-") as tmp:
        with tarfile.open(file, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        shard = q.EdgeShard.load(tmp)
        try:
            offset = None
            while True:
                records, offset = shard.scroll(
                    q.ScrollRequest(offset=offset, limit=500, with_payload=True, with_vector=True)
                )
                for r in records:
                    vector: Any = r.vector
                    if isinstance(vector, dict):
                        vector = next(iter(vector.values()))
                    yield int(r.id), list(vector), dict(r.payload or {})
                if offset is None or not records:
                    break
        finally:
            shard.close()


def _upsert_points(
    engine: Engine, points: Iterator[tuple[int, list[float], dict[str, Any]]]
) -> int:
    import numpy as np

    from ..vectors import VectorPoint

    vectors = engine.vectors()
    if vectors is None:
        raise VectorStoreError(engine.vector_status)
    batch: list[Any] = []
    total = 0
    for pid, vec, payload in points:
        batch.append(VectorPoint(pid, np.asarray(vec, dtype=np.float32), payload))
        if len(batch) >= 500:
            vectors.upsert(batch)
            total += len(batch)
            batch = []
    if batch:
        vectors.upsert(batch)
        total += len(batch)
    return total


def _upload_snapshot(engine: Engine, file: Path) -> int:
    import httpx

    from ..vectors.server import SHARDS_INDEX

    if file.name == SHARDS_INDEX:  # per-shard snapshots: uploaded shard by shard
        vectors = engine.vectors()
        if vectors is None:
            raise VectorStoreError(engine.vector_status)
        return int(vectors.restore_from(file))  # type: ignore[attr-defined]
    url = (engine.settings.qdrant_url or "").rstrip("/")
    engine.release_vectors()
    headers = {"api-key": engine.settings.qdrant_api_key} if engine.settings.qdrant_api_key else {}
    with file.open("rb") as handle:
        response = httpx.post(
            f"{url}/collections/{engine.vector_collection()}/snapshots/upload?priority=snapshot",
            files={"snapshot": (file.name, handle)},
            headers=headers,
            timeout=3600,
        )
    if response.status_code >= 400:
        raise BackupError(f"Qdrant refused the snapshot upload: HTTP {response.status_code}")
    engine.vector_manager.release(retry_now=True)
    vectors = engine.vectors()
    return 0 if vectors is None else vectors.count()


# ---------------------------------------------------------------------------- verify


@dataclass(slots=True)
class VerifyReport:
    ok: bool
    memories: int
    expected: int
    digest_matches: bool
    restore: RestoreReport
    problems_after: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "memories": self.memories,
            "expected": self.expected,
            "digest_matches": self.digest_matches,
            "problems_after": self.problems_after,
            "restore": self.restore.to_dict(),
        }


def verify_backup(
    set_dir: Path, embedder: CachedEmbedder | None = None, scratch: Path | None = None
) -> VerifyReport:
    """Restore a set into a scratch SQLite file and embedded store, then cross-check it."""
    from ..config import Settings
    from ..core import Engine

    manifest = load_manifest(set_dir)
    own_tmp = scratch is None
    root = Path(tempfile.mkdtemp(prefix="ephemera-verify-")) if scratch is None else scratch
    try:
        settings = replace(Settings(), data_dir=root, embedding_model=manifest["model"])
        use = embedder if embedder is not None and embedder.name == manifest["model"] else None
        with Engine(settings, embedder=use) as target:
            restored = restore_backup(target, set_dir)
            after = target.check()
            digest = digest_engine(target)
            ok = (
                digest.hexdigest() == manifest["memories_sha256"]
                and after.problems == 0
                and after.pending == 0
                and after.vector_status == "ok"
            )
            return VerifyReport(
                ok,
                digest.count,
                int(manifest["counts"]["memories"]),
                digest.hexdigest() == manifest["memories_sha256"],
                restored,
                after.problems + after.pending,
            )
    finally:
        if own_tmp:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------- retention


def list_backups(root: Path) -> list[tuple[float, Path]]:
    """Complete sets under ``root`` as (created_at, path), newest first."""
    out: list[tuple[float, Path]] = []
    if not root.is_dir():
        return out
    for path in root.iterdir():
        if not path.is_dir() or not path.name.startswith(SET_PREFIX):
            continue
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            created = float(manifest["created_at"])
            datetime.fromtimestamp(created, UTC)  # a time that can be shown
            out.append((created, path))
        except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
            continue
    return sorted(out, key=lambda x: x[0], reverse=True)


def describe_sets(root: Path) -> list[dict[str, Any]]:
    """``backup --list``: each complete set under ``root`` (newest first) with its time, its
    number of memories and its kind of vector snapshot; read from the manifests only."""
    if root.exists() and not root.is_dir():
        raise BackupError(f"{root}: is a file, not a folder of backup sets")
    out: list[dict[str, Any]] = []
    for created, path in list_backups(root):
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            counts = manifest.get("counts") if isinstance(manifest, dict) else None
            memories = counts.get("memories") if isinstance(counts, dict) else None
            vectors = manifest.get("vectors")
            kind = vectors.get("kind") if isinstance(vectors, dict) else None
        except (OSError, ValueError, AttributeError):
            memories, kind = None, None
        out.append(
            {
                "path": str(path),
                "created_at": created,
                "created_at_iso": datetime.fromtimestamp(created, UTC).strftime(
                    "%Y-%m-%d %H:%M:%SZ"
                ),
                "memories": memories if isinstance(memories, int) else 0,
                "vectors": kind if isinstance(kind, str) else None,
            }
        )
    return out


def apply_retention(root: Path, keep_daily: int = 7, keep_weekly: int = 4) -> list[Path]:
    """Keep the newest set of each of the last ``keep_daily`` days that have one and of the
    last ``keep_weekly`` ISO weeks (and always the newest set); delete the other sets and
    leftovers of interrupted backups. Returns what was deleted."""
    sets = list_backups(root)
    keep: set[Path] = {sets[0][1]} if sets else set()
    days: list[str] = []
    weeks: list[str] = []
    for created, path in sets:
        moment = datetime.fromtimestamp(created, UTC)
        day = moment.strftime("%Y-%m-%d")
        year, week_no, _ = moment.isocalendar()
        week = f"{year}-W{week_no:02d}"
        if day not in days:
            days.append(day)
            if len(days) <= keep_daily:
                keep.add(path)
        if week not in weeks:
            weeks.append(week)
            if len(weeks) <= keep_weekly:
                keep.add(path)
    removed: list[Path] = []
    for _created, path in sets:
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if root.is_dir():
        for path in root.glob(".partial-*"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > 3600:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed
