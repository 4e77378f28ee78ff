"""Backup sets under hostile hands: a set is checked whole before the target is written (or
the target is emptied again), the manifest is read through its schema, folders of sets are
understood, and sets are private (issue 16: items 5, 9, 10, 12, 14).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ephemera_tui.cli.main import app
from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.backup import BackupError, create_backup, load_manifest, restore_backup


def _settings(root: Path, name: str, **extra: Any) -> Settings:
    return Settings(
        data_dir=root / name,
        database_url=f"sqlite:///{root / name / 'ephemera.db'}",
        embedding_model="fake-hash-384",
        **extra,
    )


@pytest.fixture
def made(tmp_path: Path) -> Path:
    """A good set of three memories with a points snapshot."""
    with Engine(_settings(tmp_path, "source")) as engine:
        for i in range(3):
            engine.add(Draft(f"memory {i}", tags=("t",)))
        return create_backup(engine, tmp_path / "sets").path


def _rewrite(set_dir: Path, name: str, data: bytes) -> None:
    """Replace a file and give it a valid checksum and size in the manifest."""
    (set_dir / name).write_bytes(data)
    manifest = json.loads((set_dir / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (set_dir / "manifest.json").write_text(json.dumps(manifest))


def _points(set_dir: Path) -> list[str]:
    with gzip.open(set_dir / "vectors.jsonl.gz", "rt") as handle:
        return handle.read().splitlines()


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


BROKEN_SNAPSHOTS: dict[str, Callable[[list[str], bytes], bytes]] = {
    "a broken JSON line": lambda lines, _: _gz([*lines[:-1], lines[-1][:-5]]),
    "a non-integer id": lambda lines, _: _gz(
        [*lines[:-1], json.dumps({**json.loads(lines[-1]), "id": "seven"})]
    ),
    "a missing field": lambda lines, _: _gz(
        [*lines[:-1], json.dumps({"id": json.loads(lines[-1])["id"]})]
    ),
    "a truncated gzip": lambda _, raw: raw[: len(raw) // 2],
    "more points than vectors": lambda lines, _: _gz([*lines, lines[-1]]),
}


@pytest.mark.parametrize("kind", list(BROKEN_SNAPSHOTS))
def test_a_set_with_a_broken_snapshot_is_refused_before_the_target_is_written(
    made: Path, tmp_path: Path, kind: str
) -> None:
    raw = (made / "vectors.jsonl.gz").read_bytes()
    _rewrite(made, "vectors.jsonl.gz", BROKEN_SNAPSHOTS[kind](_points(made), raw))
    with Engine(_settings(tmp_path, "target")) as target:
        with pytest.raises(BackupError, match="vectors"):
            restore_backup(target, made)
        assert target.count() == 0 and target.pending() == 0


def test_a_restore_that_fails_after_the_sql_rows_empties_the_target(
    made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine.backup import sets

    def explode(*_: Any) -> int:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(sets, "_load_vectors", explode)
    monkeypatch.setattr(sets, "_upsert_points", explode)
    with Engine(_settings(tmp_path, "target")) as target:
        monkeypatch.setattr(target, "sync", lambda *a, **k: explode())
        with pytest.raises(BackupError, match="emptied again"):
            restore_backup(target, made)
        assert target.count() == 0
        monkeypatch.undo()
        report = restore_backup(target, made)  # a second restore is not refused
        assert report.memories == 3 and target.count() == 3


MANIFEST_DEFECTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "files as a list": (lambda m: m.update(files=list(m["files"])), "manifest field files:"),
    "an entry without bytes": (
        lambda m: m["files"]["sql.sqlite"].pop("bytes"),
        "manifest field files.sql.sqlite.bytes: missing",
    ),
    "sql without kind": (lambda m: m["sql"].pop("kind"), "manifest field sql.kind: expected"),
    "counts as a list": (lambda m: m.update(counts=[3]), "manifest field counts: expected"),
    "a file outside the set": (
        lambda m: m["files"].update({"../x": {"sha256": "0" * 64, "bytes": 1}}),
        "manifest field files.../x: expected a file name inside the set",
    ),
    "sha256 not hex": (
        lambda m: m["files"]["sql.sqlite"].update(sha256="zz"),
        "manifest field files.sql.sqlite.sha256: expected a sha256",
    ),
    "vectors as text": (lambda m: m.update(vectors="yes"), "manifest field vectors: expected"),
    "created_at as text": (
        lambda m: m.update(created_at="today"),
        "manifest field created_at: expected Unix seconds",
    ),
}


@pytest.mark.parametrize("defect", list(MANIFEST_DEFECTS))
def test_a_malformed_manifest_field_is_named(made: Path, defect: str) -> None:
    change, expected = MANIFEST_DEFECTS[defect]
    manifest = json.loads((made / "manifest.json").read_text())
    change(manifest)
    (made / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError) as caught:
        load_manifest(made)
    assert str(caught.value).startswith(f"backup set {made}: ")
    assert expected in str(caught.value)


def test_dump_lines_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    """A MySQL-kind dump (sql.jsonl) whose rows are not {t, r} objects."""
    set_dir = tmp_path / "set"
    set_dir.mkdir()
    dump = b'{"format": "ephemera-backup", "kind": "sql-jsonl"}\n[1, 2]\n{"end": true}\n'
    (set_dir / "sql.jsonl").write_bytes(dump)
    manifest = {
        "format": "ephemera-backup",
        "format_version": 1,
        "sql": {"kind": "sql-jsonl", "file": "sql.jsonl"},
        "files": {"sql.jsonl": {"sha256": hashlib.sha256(dump).hexdigest(), "bytes": len(dump)}},
        "counts": {"memories": 0},
        "memories_sha256": hashlib.sha256(b"").hexdigest(),
        "model": "fake-hash-384",
        "created_at": 1_700_000_000,
    }
    (set_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="sql.jsonl:2: expected an object"):
        load_manifest(set_dir)
    dump = b'{"format": "ephemera-backup"}\n{"t": "memory_fragments", "r": {"id": 1}}\n'
    _rewrite(set_dir, "sql.jsonl", dump + b'{"end": true}\n')
    with pytest.raises(BackupError, match="memory 1: content: expected text"):
        load_manifest(set_dir)


def _cli(tmp_path: Path, *args: str) -> Any:
    (tmp_path / "none.toml").write_text("")
    env = {
        "EPHEMERA_DATA_DIR": str(tmp_path / "cli"),
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "EPHEMERA_SERVICE": "off",
    }
    umask = os.umask(0o022)
    try:
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        os.umask(umask)


def test_restore_and_verify_take_a_folder_of_sets_and_list_them(made: Path, tmp_path: Path) -> None:
    folder = made.parent
    verified = _cli(tmp_path, "backup", "--verify", str(folder))
    assert verified.exit_code == 0, verified.stderr
    assert f"using the newest, {made.name}" in verified.stderr
    listed = _cli(tmp_path, "backup", "--list", "--to", str(folder))
    assert listed.exit_code == 0 and str(made) in listed.stdout and "3 memories" in listed.stdout
    restored = _cli(tmp_path, "restore", str(folder))
    assert restored.exit_code == 0, restored.stderr
    assert "restored 3 memories" in restored.stdout
    assert f"using the newest, {made.name}" in restored.stderr


@pytest.mark.parametrize("where", ["a file", "/proc"])
def test_backup_to_a_file_or_proc_is_one_line(tmp_path: Path, where: str) -> None:
    target = tmp_path / "plain.txt" if where == "a file" else Path("/proc/ephemera-backups")
    if where == "a file":
        target.write_text("not a folder")
    result = _cli(tmp_path, "backup", "--to", str(target))
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ephemera: error: "), result.stderr


def test_the_journal_and_its_backups_are_private(tmp_path: Path) -> None:
    assert _cli(tmp_path, "add", "private thought").exit_code == 0
    result = _cli(tmp_path, "backup")
    assert result.exit_code == 0, result.stderr
    set_dir = Path(result.stdout.strip())
    data = tmp_path / "cli"
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE((set_dir / "manifest.json").stat().st_mode) == 0o600


def test_a_qdrant_password_is_never_printed_or_stored(tmp_path: Path) -> None:
    url = "http://reader:hunter2secret@127.0.0.1:9"  # nothing listens on the discard port
    env_url = ["--qdrant-url", url]
    outputs = [
        _cli(tmp_path, *env_url, "add", "a memory"),
        _cli(tmp_path, *env_url, "search", "memory"),
        _cli(tmp_path, *env_url, "stats"),
        _cli(tmp_path, *env_url, "stats", "--json"),
        _cli(tmp_path, *env_url, "sync"),
        _cli(tmp_path, *env_url, "check"),
        _cli(tmp_path, *env_url, "backup", "--json"),
    ]
    for result in outputs:
        assert "hunter2secret" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "reader:***@" in outputs[2].stdout
    for path in (tmp_path / "cli").rglob("*"):
        if path.is_file():
            assert b"hunter2secret" not in path.read_bytes(), path
