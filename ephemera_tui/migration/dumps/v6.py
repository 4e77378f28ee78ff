"""V6 dumps (MeiliSearch 1.0 and later).

Layout: ``metadata.json`` (``dumpVersion``, ``dbVersion``, ``dumpDate``);
``indexes/<uid>/{metadata.json,settings.json,documents.jsonl}`` (``metadata.json``: ``uid``,
``primaryKey``, ``createdAt``, ``updatedAt``); ``tasks/queue.jsonl`` (one task a line: ``uid``,
``indexUid``, ``status``, ``type`` as the internal enum, e.g. ``{"documentImport": {…}}``) and
``tasks/update_files/<task uid>.jsonl``; since 1.13 ``batches/queue.jsonl``. Also
``keys.jsonl``, ``instance_uid.uuid``, ``experimental-features.json``, ``network.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad, jsonl_lines
from .common import DumpContents, DumpIndex, DumpTask, object_member, safe_uid

WAITING = ("enqueued", "processing")


def read(path: Path, root: Path, meta: dict[str, Any], bad: Bad) -> DumpContents:
    indexes: list[DumpIndex] = []
    folder = root / "indexes"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for name in names:
        if name.startswith("._"):
            continue  # macOS resource forks packed by some tar tools
        member = f"indexes/{name}"
        uid = safe_uid(path, member, name)
        index_meta = object_member(path, root, f"{member}/metadata.json")
        settings = object_member(path, root, f"{member}/settings.json", required=False)
        missing = not (root / member / "settings.json").is_file()
        notes = [f"{member}/settings.json missing: default settings assumed"] if missing else []
        docs = root / member / "documents.jsonl"
        if not docs.is_file():
            bad(f"{path}:{member}/documents.jsonl: missing from the dump")
        indexes.append(
            DumpIndex(
                uid=uid,
                primary_key=index_meta.get("primaryKey") or None,
                settings=settings,
                documents=docs if docs.is_file() else None,
                member=member,
                notes=notes,
            )
        )
    tasks: list[DumpTask] = []
    queue = root / "tasks" / "queue.jsonl"
    dump_notes: list[str] = []
    if not queue.is_file():
        dump_notes.append("tasks/queue.jsonl missing: no enqueued tasks replayed")
    else:
        label = f"{path}:tasks/queue.jsonl"
        for line, value in jsonl_lines(label, queue, bad):
            where = f"{label}:{line}"
            if not isinstance(value, dict) or not isinstance(value.get("uid"), int):
                bad(f"{where}: not a task (expected an object with a numeric uid)")
                continue
            if value.get("status") not in WAITING or not isinstance(value.get("indexUid"), str):
                continue
            tasks.append(_task(path, root, value, where))
    return DumpContents(
        version="V6",
        db_version=str(meta["dbVersion"]) if meta.get("dbVersion") else None,
        indexes=indexes,
        tasks=tasks,
        notes=dump_notes,
    )


def _kind(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        name, body = next(iter(value.items()))
        return str(name), body if isinstance(body, dict) else {}
    return "unknown", {}


def _task(path: Path, root: Path, value: dict[str, Any], where: str) -> DumpTask:
    uid = int(value["uid"])
    name, body = _kind(value.get("type"))
    task = DumpTask(uid=uid, index_uid=value["indexUid"], kind="other", name=name, where=where)
    if name == "documentImport":
        task.kind = "add"
        task.method = str(body.get("method") or "ReplaceDocuments")
        task.primary_key = body.get("primary_key") or None
        task.update_file = root / "tasks" / "update_files" / f"{uid}.jsonl"
        task.update_label = f"{path}:tasks/update_files/{uid}.jsonl"
    elif name == "documentDeletion":
        task.kind = "delete"
        task.ids = [str(i) for i in body.get("documents_ids") or []]
    elif name == "documentClear":
        task.kind = "clear"
    elif name == "indexDeletion":
        task.kind = "index-delete"
    elif name == "settings":
        changes = body.get("settings") or body.get("new_settings") or {}
        if isinstance(changes, dict):
            reset = bool(body.get("is_deletion"))
            task.kind = "settings"
            task.settings = {k: (None if reset else v) for k, v in changes.items()}
    elif name in ("indexCreation", "indexUpdate"):
        task.kind = "primary-key"
        task.primary_key = body.get("primary_key") or None
    return task
