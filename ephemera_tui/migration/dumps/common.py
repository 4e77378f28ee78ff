"""The parts every dump version shares: the safe unpacking, one model of indexes and tasks.

Each version reader (:mod:`.v1` … :mod:`.v6`) turns its own layout into
:class:`DumpContents` — indexes (uid, primary key, settings under the names MeiliSearch 1.x
uses, the documents file) and the tasks still *enqueued* or *processing* when the dump was
made — and :func:`to_sources` replays those tasks the same way for every version.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..source import (
    Bad,
    MigrationError,
    Source,
    SourceDoc,
    infer_primary_key,
    jsonl_lines,
    keyed,
    read_json_file,
)

KNOWN_VERSIONS = ("V1", "V2", "V3", "V4", "V5", "V6")
SAFE_UID = re.compile(r"[A-Za-z0-9_-]{1,400}")
SAFE_UUID = re.compile(r"[0-9A-Fa-f-]{1,64}")


# ---------------------------------------------------------------------------------- archive


def check_member(path: Path, member: tarfile.TarInfo) -> None:
    """Refuse members that would land outside the folder, links and special files."""
    name = member.name
    pure = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or pure.is_absolute():
        raise MigrationError(f"{path}: archive member {name!r} has an absolute path: refused")
    if ".." in pure.parts:
        raise MigrationError(
            f"{path}: archive member {name!r} leads outside the dump (..): refused"
        )
    if member.issym() or member.islnk():
        raise MigrationError(
            f"{path}: archive member {name!r} is a link ({member.linkname!r}): refused"
        )
    if not (member.isfile() or member.isdir()):
        raise MigrationError(f"{path}: archive member {name!r} is not a file or folder: refused")


def _read_to_end(path: Path, archive: tarfile.TarFile) -> None:
    """Read what follows the last member to the end of the gzip stream.

    tarfile stops quietly at a damaged header after the first one, so a corrupt archive
    would look like a shorter one; reading on makes gzip check its CRC and length, and
    anything but zero padding after the members means members were lost.
    """
    stream = archive.fileobj
    if stream is None:
        return
    while chunk := stream.read(1 << 20):
        if chunk.strip(b"\0"):
            raise MigrationError(
                f"{path}: truncated or corrupt dump archive (unreadable data after member "
                f"{archive.getmembers()[-1].name!r})"
            )


def extract(path: Path, target: Path) -> Path:
    """Unpack the whole archive after checking every member; return the dump's root folder.

    Reading every member first means a truncated or corrupt archive fails before anything
    is looked at, let alone written.
    """
    try:
        with tarfile.open(path, "r:gz") as archive:
            members = archive.getmembers()
            _read_to_end(path, archive)
            for member in members:
                check_member(path, member)
            archive.extractall(target, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise MigrationError(
            f"{path}: truncated or corrupt dump archive ({exc or type(exc).__name__})"
        ) from None
    except OSError as exc:
        raise MigrationError(f"{path}: cannot unpack dump: {exc.strerror or exc}") from None
    if not (target / "metadata.json").exists():
        entries = [p for p in target.iterdir() if not p.name.startswith("._")]
        if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "metadata.json").exists():
            return entries[0]
    return target


# ---------------------------------------------------------------------------------- model


@dataclass
class DumpIndex:
    """One index as the dump holds it."""

    uid: str
    primary_key: str | None
    settings: dict[str, Any]
    documents: Path | None  # documents.jsonl (None: the dump holds no documents file)
    member: str  # the folder inside the dump, for messages (e.g. ``indexes/<uuid>``)
    notes: list[str] = field(default_factory=list)


@dataclass
class DumpTask:
    """One task (V4+) or update (V1–V3) still waiting when the dump was made.

    ``kind``: ``add`` (documents in ``update_file``), ``delete`` (``ids``), ``clear``,
    ``index-delete``, ``settings`` (``settings``: changes, None resets), ``primary-key``
    (``primary_key``), or ``other`` (named in ``name``, not replayable here).
    """

    uid: int
    index_uid: str | None
    kind: str
    name: str
    where: str
    method: str = "ReplaceDocuments"
    primary_key: str | None = None
    ids: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    update_file: Path | None = None
    update_label: str = ""
    update_format: str = "jsonl"  # jsonl | json (a JSON array: V2)
    missing_content: str | None = None  # why the documents are not in the dump (V1)


@dataclass
class DumpContents:
    """Everything a version reader found."""

    version: str
    db_version: str | None
    indexes: list[DumpIndex]
    tasks: list[DumpTask]
    notes: list[str] = field(default_factory=list)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def safe_uid(path: Path, where: str, uid: Any) -> str:
    """An index uid as MeiliSearch allows it (it names a folder in V1 dumps)."""
    if not isinstance(uid, str) or not SAFE_UID.fullmatch(uid):
        raise MigrationError(f"{path}:{where}: index uid {uid!r} is not a MeiliSearch index uid")
    return uid


def safe_uuid(path: Path, where: str, uuid: Any) -> str:
    if not isinstance(uuid, str) or not SAFE_UUID.fullmatch(uuid):
        raise MigrationError(f"{path}:{where}: {uuid!r} is not an index uuid")
    return uuid


def object_member(path: Path, root: Path, name: str, required: bool = True) -> dict[str, Any]:
    """A member holding one JSON object; ``{}`` when missing and not required."""
    file = root / name
    if not file.is_file():
        if required:
            raise MigrationError(f"{path}:{name}: missing from the dump")
        return {}
    value = read_json_file(f"{path}:{name}", file)
    if not isinstance(value, dict):
        raise MigrationError(f"{path}:{name}:1: expected a JSON object")
    return value


# ---------------------------------------------------------------------------------- settings

# Settings keys of MeiliSearch 0.20 (V1 dumps) under the names 1.x uses.
V1_SETTING_NAMES = {
    "rankingRules": "rankingRules",
    "distinctAttribute": "distinctAttribute",
    "searchableAttributes": "searchableAttributes",
    "displayedAttributes": "displayedAttributes",
    "stopWords": "stopWords",
    "synonyms": "synonyms",
    "attributesForFaceting": "filterableAttributes",
    # the snake_case names of a V1 settings *update*
    "ranking_rules": "rankingRules",
    "distinct_attribute": "distinctAttribute",
    "searchable_attributes": "searchableAttributes",
    "displayed_attributes": "displayedAttributes",
    "stop_words": "stopWords",
    "attributes_for_faceting": "filterableAttributes",
}


def apply_settings(settings: dict[str, Any], changes: dict[str, Any], reset: bool) -> None:
    """Apply a settings task: a value sets, ``None`` (or a deletion task) resets to default."""
    for name, value in changes.items():
        if reset or value is None:
            settings.pop(name, None)
        else:
            settings[name] = value


# ---------------------------------------------------------------------------------- replay


def _starts_with_bracket(file: Path) -> bool:
    """A JSON array (V2 update files), as opposed to JSON Lines."""
    try:
        with file.open("rb") as handle:
            return handle.read(64).lstrip().startswith(b"[")
    except OSError:
        return False


def _update_docs(path: Path, task: DumpTask, bad: Bad) -> list[SourceDoc]:
    assert task.update_file is not None
    label = task.update_label
    docs: list[SourceDoc] = []
    if task.update_format == "json" and _starts_with_bracket(task.update_file):
        values = read_json_file(label, task.update_file)
        if not isinstance(values, list):
            values = [values]
        for n, value in enumerate(values):
            if isinstance(value, dict):
                docs.append(SourceDoc(f"{label}: element {n}", value))
            else:
                bad(f"{label}: element {n}: expected a JSON object")
        return docs
    for line, value in jsonl_lines(label, task.update_file, bad):
        if isinstance(value, dict):
            docs.append(SourceDoc(f"{label}:{line}", value))
        else:
            bad(f"{label}:{line}: expected a JSON object, got {type(value).__name__}")
    return docs


def choose_indexes(path: Path, contents: DumpContents, wanted: list[str] | None) -> list[DumpIndex]:
    """The indexes asked for (None or ``all``: every index), in the order asked."""
    by_uid = {i.uid: i for i in contents.indexes}
    if not by_uid:
        raise MigrationError(f"{path}: the dump holds no index")
    if not wanted or wanted == ["all"]:
        return [by_uid[u] for u in sorted(by_uid)]
    missing = [u for u in wanted if u not in by_uid]
    if missing:
        raise MigrationError(
            f"{path}: no index {', '.join(map(repr, missing))} in the dump "
            f"(it holds {', '.join(sorted(by_uid))})"
        )
    return [by_uid[u] for u in dict.fromkeys(wanted)]


def to_sources(
    path: Path,
    contents: DumpContents,
    wanted: list[str] | None,
    primary_key: str | None,
    shared: Bad,
) -> list[Source]:
    """One :class:`Source` per chosen index: its documents once its waiting tasks have run."""
    chosen = choose_indexes(path, contents, wanted)
    uids = sorted(i.uid for i in contents.indexes)
    tasks = sorted(contents.tasks, key=lambda t: t.uid)
    sources: list[Source] = []
    for index in chosen:
        bad = Bad(shared.skip_bad)  # this index's bad lines, kept with its Source
        mine = [t for t in tasks if t.index_uid == index.uid]
        notes = list(contents.notes) + list(index.notes)
        loaded: dict[int, list[SourceDoc]] = {}
        for task in mine:
            if task.kind != "add":
                continue
            if task.missing_content:
                continue
            if task.update_file is None or not task.update_file.is_file():
                bad(
                    f"{task.where}: enqueued task {task.uid} has no update file {task.update_label}"
                )
                continue
            loaded[task.uid] = _update_docs(path, task, bad)
        raw: list[SourceDoc] = []
        if index.documents is not None:
            label = f"{path}:{index.member}/documents.jsonl"
            for line, value in jsonl_lines(label, index.documents, bad):
                if isinstance(value, dict):
                    raw.append(SourceDoc(f"{label}:{line}", value))
                else:
                    bad(f"{label}:{line}: expected a JSON object, got {type(value).__name__}")
        waiting = [d.data for docs in loaded.values() for d in docs]
        pk = (
            primary_key
            or index.primary_key
            or next((t.primary_key for t in mine if t.primary_key), None)
            or infer_primary_key([d.data for d in raw] + waiting)
        )
        if not pk:
            if not raw and not loaded:
                pk = "id"  # an empty index: nothing to key
            else:
                raise MigrationError(
                    f"{path}:{index.member}: index {index.uid!r} has no primary key: "
                    "pass --primary-key"
                )
        source = Source(
            kind="dump",
            path=path,
            index_uid=index.uid,
            primary_key=str(pk),
            settings=dict(index.settings),
            indexes=uids,
            dump_version=contents.version,
            db_version=contents.db_version,
            notes=notes,
        )
        by_key = keyed(raw, source.primary_key, bad)
        for task in mine:
            replay(source, by_key, task, loaded.get(task.uid, []), bad)
        source.documents = list(by_key.values())
        source.bad = bad.messages
        sources.append(source)
    return sources


def replay(
    source: Source, by_key: dict[str, SourceDoc], task: DumpTask, docs: list[SourceDoc], bad: Bad
) -> None:
    """Apply one waiting task to the index's documents (and settings)."""
    if task.kind == "add":
        if task.missing_content:
            source.notes.append(
                f"enqueued task {task.uid} ({task.name}) not applied: {task.missing_content}"
            )
            return
        replace = task.method != "UpdateDocuments"
        for key, doc in keyed(docs, source.primary_key, bad).items():
            source.enqueued_documents += 1
            if not replace and key in by_key:
                by_key[key] = SourceDoc(doc.where, {**by_key[key].data, **doc.data})
            else:
                by_key.pop(key, None)
                by_key[key] = doc
    elif task.kind == "delete":
        if task.missing_content:
            source.notes.append(
                f"enqueued task {task.uid} ({task.name}) not applied: {task.missing_content}"
            )
            return
        for key in task.ids:
            if by_key.pop(str(key), None) is not None:
                source.deleted_by_tasks += 1
    elif task.kind in ("clear", "index-delete"):
        source.deleted_by_tasks += len(by_key)
        by_key.clear()
        if task.kind == "index-delete":
            source.notes.append(
                f"enqueued task {task.uid} deletes index {source.index_uid!r}: nothing imported"
            )
    elif task.kind == "settings":
        apply_settings(source.settings, task.settings, reset=False)
        source.settings_from_tasks += 1
    elif task.kind == "primary-key":
        pass  # used to choose the primary key, before the replay
    elif task.name.lower().startswith("document"):
        source.notes.append(
            f"enqueued task {task.uid} ({task.name}) cannot be replayed here: not applied"
        )
