"""V1 dumps (MeiliSearch 0.20 and earlier 0.x releases).

Layout: ``metadata.json`` lists the indexes (``indexes``: ``name``, ``uid``, ``primaryKey``,
``createdAt``, ``updatedAt``) with ``dbVersion`` and ``dumpVersion``; each index has a folder
named by its uid holding ``documents.jsonl``, ``settings.json`` (0.20 names:
``attributesForFaceting`` is what later releases call ``filterableAttributes``) and
``updates.jsonl`` (``status``: ``enqueued``/``processed``/``failed``; ``type``:
``{"name": "DocumentsAddition", "number": …}``, ``DocumentsPartial``, ``DocumentsDeletion``,
``ClearAll``, ``Settings`` with the update, ``Customs``).

A V1 dump does not hold the documents (or the ids) of an enqueued addition or deletion —
MeiliSearch itself skips those when it loads such a dump — so they are reported, not applied.
Enqueued ``ClearAll`` and ``Settings`` updates carry everything and are applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad, MigrationError, jsonl_lines
from .common import (
    V1_SETTING_NAMES,
    DumpContents,
    DumpIndex,
    DumpTask,
    as_dict,
    object_member,
    safe_uid,
)

NO_CONTENT = "a V1 dump does not hold the documents or ids of enqueued updates"


def settings_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """0.20 settings under the names MeiliSearch 1.x uses (null: left at the default)."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in V1_SETTING_NAMES and value is not None:
            out[V1_SETTING_NAMES[name]] = value
    return out


def _settings_update(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A V1 settings update: ``{"Update": value}`` sets, ``"Clear"`` resets, ``"Nothing"``."""
    changes: dict[str, Any] = {}
    primary_key: str | None = None
    for name, state in raw.items():
        value: Any
        if isinstance(state, dict) and "Update" in state:
            value = state["Update"]
        elif state == "Clear":
            value = None
        else:
            continue
        if name == "primary_key":
            primary_key = value if isinstance(value, str) else None
        elif name in V1_SETTING_NAMES:
            changes[V1_SETTING_NAMES[name]] = value
    return changes, primary_key


def read(path: Path, root: Path, meta: dict[str, Any], bad: Bad) -> DumpContents:
    listed = meta.get("indexes")
    if not isinstance(listed, list):
        raise MigrationError(f"{path}:metadata.json:1: a V1 dump lists its indexes: none found")
    indexes: list[DumpIndex] = []
    tasks: list[DumpTask] = []
    for n, entry in enumerate(listed):
        if not isinstance(entry, dict):
            raise MigrationError(f"{path}:metadata.json:1: indexes[{n}] is not an object")
        uid = safe_uid(path, "metadata.json", entry.get("uid"))
        member = uid
        settings = settings_v1(object_member(path, root, f"{member}/settings.json", False))
        docs = root / member / "documents.jsonl"
        if not docs.is_file():
            bad(f"{path}:{member}/documents.jsonl: missing from the dump")
        indexes.append(
            DumpIndex(
                uid=uid,
                primary_key=entry.get("primaryKey") or None,
                settings=settings,
                documents=docs if docs.is_file() else None,
                member=member,
            )
        )
        updates = root / member / "updates.jsonl"
        if updates.is_file():
            tasks.extend(_updates(path, uid, f"{member}/updates.jsonl", updates, bad))
    return DumpContents(
        version="V1",
        db_version=str(meta["dbVersion"]) if meta.get("dbVersion") else None,
        indexes=indexes,
        tasks=tasks,
    )


def _updates(path: Path, uid: str, member: str, file: Path, bad: Bad) -> list[DumpTask]:
    label = f"{path}:{member}"
    found: list[DumpTask] = []
    for line, value in jsonl_lines(label, file, bad):
        where = f"{label}:{line}"
        if not isinstance(value, dict) or not isinstance(value.get("updateId"), int):
            bad(f"{where}: not an update (expected an object with a numeric updateId)")
            continue
        if value.get("status") != "enqueued":
            continue
        kind = as_dict(value.get("type"))
        name = str(kind.get("name") or "unknown")
        task = DumpTask(
            uid=int(value["updateId"]), index_uid=uid, kind="other", name=name, where=where
        )
        if name in ("DocumentsAddition", "DocumentsPartial"):
            task.kind = "add"
            task.method = "UpdateDocuments" if name == "DocumentsPartial" else "ReplaceDocuments"
            task.missing_content = NO_CONTENT
        elif name == "DocumentsDeletion":
            task.kind = "delete"
            task.missing_content = NO_CONTENT
        elif name == "ClearAll":
            task.kind = "clear"
        elif name == "Settings" and isinstance(kind.get("settings"), dict):
            task.kind = "settings"
            task.settings, task.primary_key = _settings_update(as_dict(kind.get("settings")))
        found.append(task)
    return found
