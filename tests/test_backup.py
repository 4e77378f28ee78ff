"""Backup sets, restore, verify and retention, on SQLite and on the real MariaDB."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import MetaData

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup.sets import (
    FORMAT_VERSION,
    BackupError,
    apply_retention,
    create_backup,
    digest_engine,
    list_backups,
    load_manifest,
    restore_backup,
    verify_backup,
)
from ephemera_tui.engine.files import sha256_file
from tests.conftest import FixedClock
from tests.helpers import invoke_ephemera

TOPICS = [
    "walked the dog along the river at sunrise",
    "baked sourdough bread with rye flour",
    "debugged a race condition in the sync worker",
    "read a novel about sailing across the pacific",
    "planted tomatoes and basil in the garden",
    "call with mum about the holiday plans",
]
QUERIES = ["dog river", "bread baking", "race condition bug", "sailing novel", "garden", "holiday"]


def fill(engine: Engine, n: int = 60, start: int = 0) -> list[int]:
    ids = []
    for i in range(start, start + n):
        draft = Draft(
            content=f"{TOPICS[i % len(TOPICS)]} (entry {i})",
            created_at=1_700_000_000 + i * 3600,
            source=["note", "chat", "diary"][i % 3],
            importance=i % 256,
            tags=(f"t{i % 4}",),
            notes="n" if i % 5 == 0 else None,
        )
        ids.append(engine.add(draft).id)
    return ids


def searches(engine: Engine, ordered: bool = True) -> list[list[tuple[int, float, int]]]:
    """Top hits of a few queries with their semantic scores and keyword ranks. (InnoDB's
    FULLTEXT relevance counts deleted rows until OPTIMIZE TABLE, so a restored MariaDB gives
    the same keyword ranking with different relevance numbers.)

    Hits that match neither by word nor by meaning (cosine 0 under the fake embedder) are left
    out. With ``ordered=False`` each query's hits are sorted by id: memories with equal scores
    tie, and the vector store orders ties by storage order, which a re-embed changes.
    """
    out = []
    for q in QUERIES:
        hits = [
            (h.memory.id, round(h.semantic_score or 0.0, 4), h.keyword_rank or 0)
            for h in engine.search(q, limit=10).hits
            if h.keyword_rank is not None or (h.semantic_score or 0.0) > 1e-3
        ]
        out.append(hits if ordered else sorted(hits))
    return out


def wipe(settings: Settings) -> None:
    """Drop every table of the database and delete the data directory."""
    from sqlalchemy import create_engine

    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        database = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        return
    sql = create_engine(settings.resolved_database_url)
    meta = MetaData()
    meta.reflect(sql)
    meta.drop_all(sql)
    sql.dispose()
    shutil.rmtree(settings.data_dir, ignore_errors=True)


def vector_files(manifest: dict) -> list[str]:
    """The files of a set's vector snapshot."""
    info = manifest["vectors"]
    return [info["file"], *([info["vectors_file"]] if info.get("vectors_file") else [])]


def test_backup_wipe_restore_round_trip(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    with Engine(settings, clock=clock) as engine:
        ids = fill(engine)
        engine.delete(ids[3])
        engine.update(ids[4], Draft(content="edited: a rainy walk with the dog", created_at=1))
        before = searches(engine, ordered=False)  # ties: a restore re-inserts in id order
        digest = digest_engine(engine).hexdigest()
        store = engine.vectors()
        made = create_backup(engine, backups)
        assert engine.vectors() is store  # exported while open: never closed and reopened
        assert engine.search("dog").mode == "hybrid"
    manifest = made.manifest
    assert manifest["counts"]["memories"] == 59
    assert manifest["max_memory_id"] == max(ids)
    assert manifest["vectors"]["points"] == 59
    assert manifest["memories_sha256"] == digest
    assert manifest["model"] == "fake-hash-384"
    vectors = manifest["vectors"]
    assert set(manifest["files"]) == {
        manifest["sql"]["file"],
        vectors["file"],
        vectors["vectors_file"],
    }

    wipe(settings)
    with Engine(settings, clock=clock) as engine:
        assert engine.count() == 0
        report = restore_backup(engine, made.path)
        assert report.memories == 59
        assert report.vectors_loaded == 59
        assert report.reembedded == 0
        assert digest_engine(engine).hexdigest() == digest
        assert engine.get(ids[4]).content == "edited: a rainy walk with the dog"
        assert searches(engine, ordered=False) == before
        assert engine.check().problems == 0
        # New memories after a restore get ids past the restored ones.
        assert engine.add(Draft(content="after restore")).id > max(ids)


def test_restore_refuses_non_empty_target(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill(engine, 5)
        made = create_backup(engine, tmp_path / "b")
        with pytest.raises(BackupError, match="not empty"):
            restore_backup(engine, made.path)
        assert engine.count() == 5


def _corrupt_cases(set_dir: Path) -> dict[str, tuple[Callable[[], None], str]]:
    manifest = json.loads((set_dir / "manifest.json").read_text())
    dump = set_dir / manifest["sql"]["file"]

    def truncate() -> None:
        data = dump.read_bytes()
        dump.write_bytes(data[: len(data) // 2])

    def flip() -> None:
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))

    def version() -> None:
        changed = {**manifest, "format_version": FORMAT_VERSION + 1}
        (set_dir / "manifest.json").write_text(json.dumps(changed))

    def no_manifest() -> None:
        (set_dir / "manifest.json").unlink()

    def bad_json() -> None:
        (set_dir / "manifest.json").write_text(json.dumps(manifest)[:40])

    def vectors_flipped() -> None:
        path = set_dir / manifest["vectors"]["file"]
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))

    return {
        "truncated dump": (truncate, "truncated"),
        "checksum mismatch": (flip, "checksum mismatch"),
        "wrong manifest version": (version, "version"),
        "missing manifest": (no_manifest, "no manifest.json"),
        "truncated manifest": (bad_json, "unreadable manifest"),
        "corrupt vector snapshot": (vectors_flipped, "checksum mismatch"),
    }


CLI_CASES = ("truncated dump", "checksum mismatch", "wrong manifest version")


@pytest.mark.slow
def test_corrupted_inputs_are_refused_and_touch_nothing(
    settings: Settings, clock: FixedClock, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill(engine, 12)
        made = create_backup(engine, tmp_path / "b")
    wipe(settings)
    env = {**cli_env}
    for name in _corrupt_cases(made.path):
        bad = tmp_path / "bad" / name.replace(" ", "-")
        shutil.copytree(made.path, bad)
        action, message = _corrupt_cases(bad)[name]
        action()
        with pytest.raises(BackupError, match=message):
            load_manifest(bad)
        if name not in CLI_CASES:
            continue
        result = invoke_ephemera("restore", str(bad), env=env)
        assert result.returncode == 1, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ephemera: error: "), (name, lines)
        assert message in lines[0], (name, lines)
        # Nothing was touched: no data dir, no tables.
        assert not settings.data_dir.exists(), name
        if not settings.resolved_database_url.startswith("sqlite"):
            from sqlalchemy import create_engine, inspect

            sql = create_engine(settings.resolved_database_url)
            assert inspect(sql).get_table_names() == [], name
            sql.dispose()
    # The intact set still restores through the CLI.
    ok = invoke_ephemera("restore", str(made.path), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "restored 12 memories" in ok.stdout


def test_missing_or_older_vector_snapshot_reembeds(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill(engine, 10)
        older = create_backup(engine, tmp_path / "b")
        fill(engine, 7, start=10)
        newer = create_backup(engine, tmp_path / "b")
        before = searches(engine, ordered=False)
        digest = digest_engine(engine).hexdigest()
    # Make the newer set carry the older vector snapshot (as if it was taken before more writes).
    manifest = json.loads((newer.path / "manifest.json").read_text())
    files = vector_files(manifest)
    for name in files:
        shutil.copy(older.path / name, newer.path / name)
        manifest["files"][name] = older.manifest["files"][name]
    manifest["vectors"] = older.manifest["vectors"]
    (newer.path / "manifest.json").write_text(json.dumps(manifest))
    wipe(settings)
    with Engine(settings, clock=clock) as engine:
        report = restore_backup(engine, newer.path)
        assert report.vectors_loaded == 10
        assert report.reembedded == 7
        assert digest_engine(engine).hexdigest() == digest
        assert searches(engine, ordered=False) == before
        assert engine.check().problems == 0 and engine.pending() == 0
    # And a set with no vector snapshot at all.
    manifest = json.loads((newer.path / "manifest.json").read_text())
    for name in files:
        (newer.path / name).unlink()
        del manifest["files"][name]
    manifest["vectors"] = None
    (newer.path / "manifest.json").write_text(json.dumps(manifest))
    wipe(settings)
    with Engine(settings, clock=clock) as engine:
        report = restore_backup(engine, newer.path)
        assert report.vectors_loaded == 0 and report.reembedded == 17
        assert searches(engine, ordered=False) == before


def replace_vector_snapshot(set_dir: Path, info: dict, files: list[Path]) -> None:
    """Swap a set's vector snapshot for ``files`` described by ``info`` (an older format)."""
    manifest = json.loads((set_dir / "manifest.json").read_text())
    for name in vector_files(manifest):
        if set_dir / name not in files:
            (set_dir / name).unlink()
        del manifest["files"][name]
    for file in files:
        manifest["files"][file.name] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
    manifest["vectors"] = info
    (set_dir / "manifest.json").write_text(json.dumps(manifest))


def as_shard_archive(engine: Engine, set_dir: Path) -> None:
    """Earlier versions packed the embedded shard's directory as ``vectors.tar.gz``."""
    shard = engine.vectors_path
    engine.release_vectors()
    archive = set_dir / "vectors.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(shard, arcname=".")
    info = {"kind": "edge-shard", "file": archive.name, "points": 9}
    replace_vector_snapshot(set_dir, info, [archive])


def as_inline_vectors(engine: Engine, set_dir: Path) -> None:
    """Earlier versions wrote each vector as a JSON list inside ``vectors.jsonl.gz``."""
    info = json.loads((set_dir / "manifest.json").read_text())["vectors"]
    rows = np.fromfile(set_dir / info["vectors_file"], dtype="<f4").reshape(-1, info["dim"])
    points = set_dir / info["file"]
    with gzip.open(points, "rt") as handle:
        items = [json.loads(line) for line in handle]
    with gzip.open(points, "wt") as out:
        for item, row in zip(items, rows, strict=True):
            out.write(json.dumps({**item, "v": row.tolist()}) + "\n")
    replace_vector_snapshot(set_dir, {"kind": "points", "file": points.name, "points": 9}, [points])


@pytest.mark.parametrize("rewrite", [as_shard_archive, as_inline_vectors])
def test_sets_from_earlier_versions_still_restore(
    settings: Settings,
    clock: FixedClock,
    tmp_path: Path,
    rewrite: Callable[[Engine, Path], None],
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill(engine, 9)
        made = create_backup(engine, tmp_path / "b")
        before = searches(engine, ordered=False)
        rewrite(engine, made.path)
    wipe(settings)
    with Engine(settings, clock=clock) as engine:
        report = restore_backup(engine, made.path)
        assert report.vectors_loaded == 9 and report.reembedded == 0
        assert searches(engine, ordered=False) == before
        assert engine.check().problems == 0


def test_backup_while_vector_store_is_held_elsewhere(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    with Engine(settings, clock=clock) as holder:
        fill(holder, 6)
        with Engine(settings, clock=clock) as other:
            made = create_backup(other, tmp_path / "b")
    assert made.manifest["vectors"] is None
    assert "another process" in made.manifest["vectors_note"]
    result = verify_backup(made.path)
    assert result.ok and result.restore.reembedded == 6


def test_verify_restores_into_scratch(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    with Engine(settings, clock=clock) as engine:
        fill(engine, 8)
        made = create_backup(engine, tmp_path / "b")
        result = verify_backup(made.path, embedder=engine.embedder)
    assert result.ok and result.digest_matches
    assert result.memories == result.expected == 8
    assert result.restore.vectors_loaded == 8


def test_retention_keeps_last_days_and_weeks(tmp_path: Path) -> None:
    root = tmp_path / "b"
    start = 1_767_225_600  # a Thursday
    for n in range(40):  # two sets a day for 20 days (only the manifest matters to retention)
        created = start + n * 12 * 3600
        path = root / f"ephemera-{n:03d}"
        path.mkdir(parents=True)
        (path / "manifest.json").write_text(
            json.dumps({"created_at": created, "created_at_iso": f"{created}"})
        )
    (root / ".partial-ephemera-x").mkdir()  # an interrupted backup, old enough to clear
    os.utime(root / ".partial-ephemera-x", (start, start))
    removed = apply_retention(root, keep_daily=2, keep_weekly=2)
    kept = sorted(p.name for _, p in list_backups(root))
    # The newest set of each of the last 2 days (Jan 20, 19) and of the last 2 ISO weeks
    # (week 4: Jan 20; week 3: Sunday Jan 18).
    assert kept == ["ephemera-035", "ephemera-037", "ephemera-039"]
    assert len(removed) == 38
    assert not (root / ".partial-ephemera-x").exists()
    assert apply_retention(root, keep_daily=2, keep_weekly=2) == []


def test_client_vectors_backup_and_restore(
    settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    """A Qdrant-server configuration (qdrant-client's local mode stands in for the server)."""
    server = replace(settings, qdrant_url=f"local:{tmp_path / 'qdrant'}")
    with Engine(server, clock=clock) as engine:
        fill(engine, 9)
        before = searches(engine, ordered=False)
        made = create_backup(engine, tmp_path / "b")
    assert made.manifest["vectors"]["kind"] == "points"
    wipe(server)
    shutil.rmtree(tmp_path / "qdrant")
    # Restore into the embedded store: the exported points are loaded as they are.
    with Engine(settings, clock=clock) as engine:
        report = restore_backup(engine, made.path)
        assert report.vectors_loaded == 9 and report.reembedded == 0
        assert searches(engine, ordered=False) == before
