"""V2 dumps (MeiliSearch 0.21 – 0.22).

Layout: ``metadata.json`` (``dumpVersion``, ``dbVersion``, ``indexDbSize``, ``updateDbSize``,
``dumpDate``); ``index_uuids/data.jsonl`` (``{"uuid", "uid"}`` a line);
``indexes/index-<uuid>/{documents.jsonl,meta.json}`` (``meta.json``: ``settings`` and
``primary_key``); ``updates/data.jsonl`` (``{"uuid": <index uuid>, "update": {"status",
"updateId", "meta": {"type": "DocumentsAddition", "method", "format", "primary_key"} |
{"type": "DeleteDocuments", "ids"} | {"type": "ClearDocuments"} | {"type": "Settings", …},
"content": <update file uuid>, …}}``) and ``updates/update_files/update_<uuid>`` holding the
documents of a waiting addition as one JSON array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad, MigrationError, jsonl_lines
from .common import (
    DumpContents,
    DumpIndex,
    DumpTask,
    as_dict,
    object_member,
    safe_uid,
    safe_uuid,
)

WAITING = ("enqueued", "processing")


def index_uuids(path: Path, root: Path, bad: Bad) -> list[tuple[str, dict[str, Any]]]:
    """``index_uuids/data.jsonl`` of V2–V5 dumps: (index uid, the rest of the line)."""
    file = root / "index_uuids" / "data.jsonl"
    if not file.is_file():
        raise MigrationError(f"{path}:index_uuids/data.jsonl: missing from the dump")
    label = f"{path}:index_uuids/data.jsonl"
    out: list[tuple[str, dict[str, Any]]] = []
    for line, value in jsonl_lines(label, file, bad):
        if not isinstance(value, dict):
            bad(f"{label}:{line}: expected a JSON object")
            continue
        out.append((safe_uid(path, f"index_uuids/data.jsonl:{line}", value.get("uid")), value))
    return out


def index_from_meta(path: Path, root: Path, uid: str, member: str, bad: Bad) -> DumpIndex:
    """An index folder of V2–V5 dumps: ``meta.json`` (settings, primary_key) + documents."""
    meta = object_member(path, root, f"{member}/meta.json")
    settings = as_dict(meta.get("settings"))
    docs = root / member / "documents.jsonl"
    if not docs.is_file():
        bad(f"{path}:{member}/documents.jsonl: missing from the dump")
    return DumpIndex(
        uid=uid,
        primary_key=meta.get("primary_key") or None,
        settings={k: v for k, v in settings.items() if v is not None},
        documents=docs if docs.is_file() else None,
        member=member,
    )


def read(path: Path, root: Path, meta: dict[str, Any], bad: Bad) -> DumpContents:
    indexes: list[DumpIndex] = []
    by_uuid: dict[str, str] = {}
    for uid, entry in index_uuids(path, root, bad):
        uuid = safe_uuid(path, "index_uuids/data.jsonl", entry.get("uuid"))
        by_uuid[uuid] = uid
        indexes.append(index_from_meta(path, root, uid, f"indexes/index-{uuid}", bad))
    tasks: list[DumpTask] = []
    queue = root / "updates" / "data.jsonl"
    notes: list[str] = []
    if not queue.is_file():
        notes.append("updates/data.jsonl missing: no enqueued updates replayed")
    else:
        label = f"{path}:updates/data.jsonl"
        for line, value in jsonl_lines(label, queue, bad):
            where = f"{label}:{line}"
            update = as_dict(as_dict(value).get("update"))
            if not isinstance(update.get("updateId"), int):
                bad(f"{where}: not an update (expected {{'uuid', 'update': {{'updateId', …}}}})")
                continue
            if update.get("status") not in WAITING:
                continue
            index_uid = by_uuid.get(str(as_dict(value).get("uuid")))
            tasks.append(_task(path, root, index_uid, update, where))
    return DumpContents(
        version="V2",
        db_version=str(meta["dbVersion"]) if meta.get("dbVersion") else None,
        indexes=indexes,
        tasks=tasks,
        notes=notes,
    )


def _task(
    path: Path, root: Path, index_uid: str | None, update: dict[str, Any], where: str
) -> DumpTask:
    body = as_dict(update.get("meta"))
    name = str(body.get("type") or "unknown")
    task = DumpTask(
        uid=int(update["updateId"]), index_uid=index_uid, kind="other", name=name, where=where
    )
    if name == "DocumentsAddition":
        task.kind = "add"
        task.method = str(body.get("method") or "ReplaceDocuments")
        task.primary_key = body.get("primary_key") or None
        content = update.get("content")
        if isinstance(content, str):
            uuid = safe_uuid(path, where, content)
            task.update_file = root / "updates" / "update_files" / f"update_{uuid}"
            task.update_label = f"{path}:updates/update_files/update_{uuid}"
            task.update_format = "json"
        else:
            task.update_label = "(the update names none)"
    elif name == "DeleteDocuments":
        task.kind = "delete"
        task.ids = [str(i) for i in body.get("ids") or []]
    elif name == "ClearDocuments":
        task.kind = "clear"
    elif name == "Settings":
        task.kind = "settings"
        task.settings = {k: v for k, v in body.items() if k != "type"}
    return task
