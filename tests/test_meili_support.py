"""Builders for MeiliSearch fixtures (imported by the test_meili_* modules; holds no tests).

:func:`write_dump` writes the V6 layout MeiliSearch 1.x writes: a gzip tar holding
``metadata.json``, ``instance_uid.uuid``, ``keys.jsonl``, ``indexes/<uid>/{metadata.json,
settings.json,documents.jsonl}``, ``tasks/queue.jsonl`` and ``tasks/update_files/<task
uid>.jsonl``. The real dumps MeiliSearch wrote (V1 to V6) are read from ``REAL_DUMPS`` at test
time (``$EPHEMERA_MEILI_DUMPS`` overrides it); :func:`unpack`/:func:`pack` let a test add
enqueued tasks to one in its own version's layout.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

DIM = 384
MODEL = "fake-hash-384"  # the engine's embedder in tests: vectors made "by it" are reused


def one_hot(slot: int, dim: int = DIM) -> list[float]:
    vec = [0.0] * dim
    vec[slot] = 1.0
    return vec


def sample_documents() -> list[dict[str, Any]]:
    """Four documents: a vector in each of the three shapes, plus a wrong-dimension one."""
    return [
        {
            "id": 1,
            "text": "walked the dog in the rain",
            "timestamp": 1_700_000_000,  # seconds
            "labels": ["dog", "walk"],
            "priority": 200,
            "_vectors": {"default": {"embeddings": [one_hot(7)], "regenerate": False}},
        },
        {
            "id": 2,
            "text": "bought sourdough bread",
            "timestamp": 1_700_000_100_000,  # milliseconds
            "labels": "food, shopping",
            "_vectors": {"default": one_hot(9)},  # a flat list
        },
        {
            "id": 3,
            "text": "team meeting about the roadmap",
            "timestamp": "2023-11-14T22:15:00Z",  # ISO 8601
            "_vectors": {"default": None},  # no vector
        },
        {
            "id": "four",
            "text": "a quiet evening with a book",
            "timestamp": 1_700_000_300,
            "mood": "happy",
            "_geo": {"lat": 48.85, "lng": 2.35},
            "_vectors": {"default": [0.1, 0.2, 0.3]},  # wrong dimension
        },
        {"id": 7, "text": "deleted by an enqueued task", "timestamp": 1_700_000_400},
    ]


def sample_settings(model: str = MODEL) -> dict[str, Any]:
    return {
        "displayedAttributes": ["*"],
        "searchableAttributes": ["text"],
        "filterableAttributes": ["labels"],
        "embedders": {"default": {"source": "huggingFace", "model": model, "dimensions": DIM}},
    }


def sample_tasks() -> list[tuple[dict[str, Any], list[dict[str, Any]] | None]]:
    """A finished import, an enqueued update (with its update file) and an enqueued deletion."""
    return [
        (
            {
                "uid": 0,
                "batchUid": 0,
                "indexUid": "notes",
                "status": "succeeded",
                "type": {
                    "documentImport": {
                        "primary_key": "id",
                        "method": "ReplaceDocuments",
                        "documents_count": 5,
                        "allow_index_creation": True,
                    }
                },
                "enqueuedAt": "2023-11-14T22:00:00Z",
                "startedAt": "2023-11-14T22:00:01Z",
                "finishedAt": "2023-11-14T22:00:02Z",
            },
            None,
        ),
        (
            {
                "uid": 5,
                "indexUid": "notes",
                "status": "enqueued",
                "type": {
                    "documentImport": {
                        "primary_key": None,
                        "method": "UpdateDocuments",
                        "documents_count": 2,
                        "allow_index_creation": True,
                    }
                },
                "details": {"receivedDocuments": 2, "indexedDocuments": None},
                "enqueuedAt": "2023-11-15T08:00:00Z",
            },
            [
                {"id": 3, "mood": "calm"},
                {"id": 6, "text": "still in the queue at dump time", "timestamp": 1_700_000_500},
            ],
        ),
        (
            {
                "uid": 6,
                "indexUid": "notes",
                "status": "enqueued",
                "type": {"documentDeletion": {"documents_ids": ["7"]}},
                "enqueuedAt": "2023-11-15T08:00:01Z",
            },
            None,
        ),
    ]


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    archive.addfile(info, io.BytesIO(data))


def _jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def write_dump(
    path: Path,
    *,
    index: str = "notes",
    primary_key: str | None = "id",
    documents: list[dict[str, Any]] | None = None,
    documents_text: str | None = None,
    settings: dict[str, Any] | None = None,
    tasks: list[tuple[dict[str, Any], list[dict[str, Any]] | None]] | None = None,
    version: str = "V6",
    omit: tuple[str, ...] = (),
    extra_indexes: tuple[str, ...] = (),
) -> Path:
    """Write a V6 dump; ``omit`` drops members by name, ``documents_text`` sets raw lines."""
    docs = sample_documents() if documents is None else documents
    task_rows = sample_tasks() if tasks is None else tasks
    members: dict[str, bytes] = {
        "metadata.json": json.dumps(
            {"dumpVersion": version, "dbVersion": "1.11.3", "dumpDate": "2023-11-15T09:00:00Z"}
        ).encode(),
        "instance_uid.uuid": b"9e15e977-f2ae-4761-943f-1eaf75fd736d",
        "keys.jsonl": b"",
        f"indexes/{index}/metadata.json": json.dumps(
            {
                "uid": index,
                "primaryKey": primary_key,
                "createdAt": "2023-11-01T00:00:00Z",
                "updatedAt": "2023-11-15T00:00:00Z",
            }
        ).encode(),
        f"indexes/{index}/settings.json": json.dumps(
            sample_settings() if settings is None else settings
        ).encode(),
        f"indexes/{index}/documents.jsonl": (
            documents_text.encode() if documents_text is not None else _jsonl(docs)
        ),
        "tasks/queue.jsonl": _jsonl([t for t, _ in task_rows]),
    }
    for task, update in task_rows:
        if update is not None:
            members[f"tasks/update_files/{task['uid']}.jsonl"] = _jsonl(update)
    for other in extra_indexes:
        members[f"indexes/{other}/metadata.json"] = json.dumps(
            {
                "uid": other,
                "primaryKey": "id",
                "createdAt": "2023-11-01T00:00:00Z",
                "updatedAt": "2023-11-01T00:00:00Z",
            }
        ).encode()
        members[f"indexes/{other}/settings.json"] = b"{}"
        members[f"indexes/{other}/documents.jsonl"] = _jsonl([{"id": 1, "text": "other"}])
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            if name not in omit:
                _add(archive, name, data)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def export_documents() -> list[dict[str, Any]]:
    """Documents as GET /indexes/<uid>/documents returns them (no _vectors), other field names."""
    return [
        {
            "uid": "a1",
            "body": "first export note",
            "createdAt": "2024-05-01T10:00:00Z",
            "category": "diary",
            "keywords": ["one"],
        },
        {
            "uid": "a2",
            "body": "second export note",
            "createdAt": 1_714_557_600_000,
            "category": "diary",
            "stars": 4,
        },
        {"uid": "a3", "body": "third export note", "createdAt": 1_714_557_700, "category": "work"},
    ]


def write_pages(folder: Path, docs: list[dict[str, Any]], limit: int, skip: tuple[int, ...] = ()):
    folder.mkdir(parents=True, exist_ok=True)
    for n, offset in enumerate(range(0, len(docs), limit)):
        if n in skip:
            continue
        page = {
            "results": docs[offset : offset + limit],
            "offset": offset,
            "limit": limit,
            "total": len(docs),
        }
        (folder / f"page-{n:03d}.json").write_text(json.dumps(page, indent=2))
    return folder


# ---------------------------------------------------------------------------------- real dumps

# Dumps written by MeiliSearch itself (its own test assets, MIT licence; see the README there).
# They are read from the shared folder at test time, never copied into the project.
REAL_DUMPS = Path(
    os.environ.get("EPHEMERA_MEILI_DUMPS")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "meili-dumps"
)
REAL_DUMP_FILES = {
    "V1": "v1_v0.20.0_movies.dump",
    "V2": "v2_v0.21.1_movies.dump",
    "V3": "v3_v0.24.0_movies.dump",
    "V4": "v4_v0.25.2_movies.dump",
    "V5": "v5_v0.28.0_test_dump.dump",
    "V6-experimental": "v6-with-experimental.dump",
    "V6-vectors": "v6-with-vectors.dump",
    "V6-enqueued": "v6_v1.13.0_batches_and_enqueued_tasks.dump",
}


def real_dump(name: str) -> Path:
    """A real dump from the shared folder; skips the test (with the reason) when it is absent."""
    import pytest

    path = REAL_DUMPS / name
    if not path.is_file():
        pytest.skip(f"MeiliSearch test dumps not found at {REAL_DUMPS} (see its README)")
    return path


def unpack(dump: Path, folder: Path) -> Path:
    """Unpack a dump (a trusted test asset) into ``folder``; return the dump's root."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dump, "r:gz") as archive:
        archive.extractall(folder, filter="data")
    return folder


def pack(folder: Path, path: Path) -> Path:
    """Write ``folder`` back as a gzip tar dump, members relative to it."""
    with tarfile.open(path, "w:gz") as archive:
        for file in sorted(folder.rglob("*")):
            archive.add(file, arcname=str(file.relative_to(folder)), recursive=False)
    return path


def append_jsonl(file: Path, rows: list[Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as handle:
        if file.stat().st_size and not file.read_text().endswith("\n"):
            handle.write("\n")
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def movie_docs(dump: Path, member_suffix: str = "documents.jsonl") -> list[dict[str, Any]]:
    """The documents of the (only) movies index of a real dump, read at test time."""
    with tarfile.open(dump, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if name.endswith(member_suffix) and "/._" not in name:
                handle = archive.extractfile(member)
                assert handle is not None
                return [json.loads(line) for line in handle.read().decode().splitlines() if line]
    raise AssertionError(f"no {member_suffix} in {dump}")


def evil_dump(path: Path, member: str, *, link: str | None = None) -> Path:
    """A V6 dump plus one member named ``member`` (e.g. ``/etc/x`` or ``../x``), or a link."""
    base = write_dump(path.with_suffix(".base"))
    with tarfile.open(base, "r:gz") as src, tarfile.open(path, "w:gz") as out:
        for item in src.getmembers():
            handle = src.extractfile(item)
            out.addfile(item, handle)
        info = tarfile.TarInfo(member)
        if link is not None:
            info.type = tarfile.SYMTYPE
            info.linkname = link
            out.addfile(info)
        else:
            data = b'{"id": 1}\n'
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    base.unlink()
    return path


def corrupt(path: Path) -> Path:
    """Flip bytes in the middle of the compressed stream (the gzip CRC no longer matches)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 16, len(data) - 8)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path
