"""Read MeiliSearch dumps of every version (V1 – V6) into one :class:`Source` per index.

:func:`read_dump` unpacks the archive into a temporary folder (refusing unsafe members),
reads ``metadata.json`` to learn the version, hands the folder to that version's reader
(:mod:`.v1` … :mod:`.v6`) and replays the tasks still waiting in it (:func:`.common.to_sources`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..source import Bad, MigrationError, Source, read_json_file
from . import v1, v2, v3, v4, v5, v6
from .common import KNOWN_VERSIONS, DumpContents, extract, to_sources

READERS: dict[str, Callable[[Path, Path, dict[str, Any], Bad], DumpContents]] = {
    "V1": v1.read,
    "V2": v2.read,
    "V3": v3.read,
    "V4": v4.read,
    "V5": v5.read,
    "V6": v6.read,
}


def read_dump(
    path: Path, indexes: list[str] | None, primary_key: str | None, bad: Bad
) -> list[Source]:
    """The chosen indexes of a ``.dump`` file (None or ``["all"]``: every index)."""
    with tempfile.TemporaryDirectory(prefix="ephemera-meili-") as tmp:
        root = extract(path, Path(tmp))
        return read_dump_dir(path, root, indexes, primary_key, bad)


def read_dump_dir(
    path: Path, root: Path, indexes: list[str] | None, primary_key: str | None, bad: Bad
) -> list[Source]:
    if not (root / "metadata.json").is_file():
        raise MigrationError(f"{path}: not a MeiliSearch dump: metadata.json is missing")
    meta = read_json_file(f"{path}:metadata.json", root / "metadata.json")
    if not isinstance(meta, dict) or "dumpVersion" not in meta:
        raise MigrationError(f"{path}:metadata.json:1: no dumpVersion: not a MeiliSearch dump")
    version = meta.get("dumpVersion")
    reader = READERS.get(str(version))
    if reader is None:
        raise MigrationError(
            f"{path}:metadata.json:1: unsupported dump version {version!r}: this release reads "
            f"{KNOWN_VERSIONS[0]} to {KNOWN_VERSIONS[-1]} (MeiliSearch 0.20 to 1.x); a newer "
            "MeiliSearch may have written it"
        )
    contents = reader(path, root, meta, bad)
    return to_sources(path, contents, indexes, primary_key, bad)
