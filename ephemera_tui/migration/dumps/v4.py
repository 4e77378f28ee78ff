"""V4 dumps (MeiliSearch 0.25 – 0.26) and V5 dumps (0.27 – 0.30).

Layout: ``metadata.json``; ``index_uuids/data.jsonl`` (``{"uid", "index_meta": {"uuid",
"creation_task_id"}}``); ``indexes/<uuid>/{documents.jsonl,meta.json}``; ``keys``;
``updates/data.jsonl`` holding *tasks* (``{"id", "content", "events"}``, V4 also
``"index_uid"``) and ``updates/updates_files/<content_uuid>`` (JSON Lines).

A task's ``content`` is an externally tagged enum: ``DocumentAddition`` (``content_uuid``,
``merge_strategy``, ``primary_key``), ``DocumentDeletion`` (V4: ``"Clear"`` or
``{"Ids": […]}``; V5: ``{"index_uid", "deletion": …}``), ``SettingsUpdate`` (``settings``,
``is_deletion``), ``IndexDeletion``, ``IndexCreation``/``IndexUpdate`` (``primary_key``) and,
in V5, ``Dump``. In V5 the index uid sits inside the content. A task is waiting while its
last event is ``Created``, ``Batched`` or ``Processing`` (finished: ``Succeded`` in V4,
``Succeeded`` in V5, or ``Failed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad, jsonl_lines
from .common import DumpContents, DumpIndex, DumpTask, as_dict, safe_uuid
from .v2 import index_from_meta, index_uuids
from .v3 import enum_kind, update_file

WAITING_EVENTS = ("Created", "Batched", "Processing")


def is_waiting(events: Any) -> bool:
    if not isinstance(events, list) or not events:
        return False
    name, _ = enum_kind(events[-1])
    return name in WAITING_EVENTS


def read(
    path: Path, root: Path, meta: dict[str, Any], bad: Bad, version: str = "V4"
) -> DumpContents:
    indexes: list[DumpIndex] = []
    for uid, entry in index_uuids(path, root, bad):
        index_meta = as_dict(entry.get("index_meta"))
        uuid = safe_uuid(path, "index_uuids/data.jsonl", index_meta.get("uuid"))
        indexes.append(index_from_meta(path, root, uid, f"indexes/{uuid}", bad))
    tasks: list[DumpTask] = []
    notes: list[str] = []
    queue = root / "updates" / "data.jsonl"
    if not queue.is_file():
        notes.append("updates/data.jsonl missing: no enqueued tasks replayed")
    else:
        label = f"{path}:updates/data.jsonl"
        for line, value in jsonl_lines(label, queue, bad):
            where = f"{label}:{line}"
            task = as_dict(value)
            if not isinstance(task.get("id"), int):
                bad(f"{where}: not a task (expected an object with a numeric id)")
                continue
            if not is_waiting(task.get("events")):
                continue
            tasks.append(_task(path, root, task, where, version))
    return DumpContents(
        version=version,
        db_version=str(meta["dbVersion"]) if meta.get("dbVersion") else None,
        indexes=indexes,
        tasks=tasks,
        notes=notes,
    )


def _task(path: Path, root: Path, value: dict[str, Any], where: str, version: str) -> DumpTask:
    name, body = enum_kind(value.get("content"))
    fields = body if isinstance(body, dict) else {}
    index_uid = value.get("index_uid") if version == "V4" else fields.get("index_uid")
    task = DumpTask(
        uid=int(value["id"]),
        index_uid=index_uid if isinstance(index_uid, str) else None,
        kind="other",
        name=name,
        where=where,
    )
    if name == "DocumentAddition":
        task.kind = "add"
        task.method = str(fields.get("merge_strategy") or "ReplaceDocuments")
        task.primary_key = fields.get("primary_key") or None
        update_file(path, root, task, fields.get("content_uuid"))
    elif name == "DocumentDeletion":
        deletion = body if version == "V4" else fields.get("deletion")
        what, ids = enum_kind(deletion)
        if what == "Clear":
            task.kind = "clear"
        elif what == "Ids":
            task.kind = "delete"
            task.ids = [str(i) for i in ids or []] if isinstance(ids, list) else []
    elif name == "SettingsUpdate":
        settings = fields.get("settings")
        if isinstance(settings, dict):
            reset = bool(fields.get("is_deletion"))
            task.kind = "settings"
            task.settings = {k: (None if reset else v) for k, v in settings.items()}
    elif name == "IndexDeletion":
        task.kind = "index-delete"
    elif name in ("IndexCreation", "IndexUpdate"):
        task.kind = "primary-key"
        task.primary_key = fields.get("primary_key") or None
    return task
