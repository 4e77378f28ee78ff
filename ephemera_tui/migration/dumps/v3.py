"""V3 dumps (MeiliSearch 0.23 – 0.24).

Layout as V2 except: index folders are ``indexes/<uuid>`` (no ``index-`` prefix); an update's
``meta`` is an externally tagged enum — ``{"DocumentAddition": {"primary_key", "method",
"content_uuid"}}``, ``{"DeleteDocuments": [ids]}``, ``{"Settings": {…}}`` or
``"ClearDocuments"`` — and the documents of a waiting addition are JSON Lines in
``updates/updates_files/<content_uuid>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad, jsonl_lines
from .common import DumpContents, DumpIndex, DumpTask, as_dict, safe_uuid
from .v2 import WAITING, index_from_meta, index_uuids


def enum_kind(value: Any) -> tuple[str, Any]:
    """An externally tagged enum value (``"Name"`` or ``{"Name": body}``) → (name, body)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        name, body = next(iter(value.items()))
        return str(name), body
    return "unknown", None


def update_file(path: Path, root: Path, task: DumpTask, content_uuid: Any) -> None:
    """Point ``task`` at ``updates/updates_files/<uuid>`` (V3–V5 share this folder)."""
    uuid = safe_uuid(path, task.where, content_uuid)
    task.update_file = root / "updates" / "updates_files" / uuid
    task.update_label = f"{path}:updates/updates_files/{uuid}"


def read(path: Path, root: Path, meta: dict[str, Any], bad: Bad) -> DumpContents:
    indexes: list[DumpIndex] = []
    by_uuid: dict[str, str] = {}
    for uid, entry in index_uuids(path, root, bad):
        uuid = safe_uuid(path, "index_uuids/data.jsonl", entry.get("uuid"))
        by_uuid[uuid] = uid
        indexes.append(index_from_meta(path, root, uid, f"indexes/{uuid}", bad))
    tasks: list[DumpTask] = []
    notes: list[str] = []
    queue = root / "updates" / "data.jsonl"
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
        version="V3",
        db_version=str(meta["dbVersion"]) if meta.get("dbVersion") else None,
        indexes=indexes,
        tasks=tasks,
        notes=notes,
    )


def _task(
    path: Path, root: Path, index_uid: str | None, update: dict[str, Any], where: str
) -> DumpTask:
    name, body = enum_kind(update.get("meta"))
    task = DumpTask(
        uid=int(update["updateId"]), index_uid=index_uid, kind="other", name=name, where=where
    )
    if name == "DocumentAddition" and isinstance(body, dict):
        task.kind = "add"
        task.method = str(body.get("method") or "ReplaceDocuments")
        task.primary_key = body.get("primary_key") or None
        update_file(path, root, task, body.get("content_uuid"))
    elif name == "DeleteDocuments":
        task.kind = "delete"
        task.ids = [str(i) for i in body or []] if isinstance(body, list) else []
    elif name == "ClearDocuments":
        task.kind = "clear"
    elif name == "Settings" and isinstance(body, dict):
        task.kind = "settings"
        task.settings = dict(body)
    return task
