"""Failures after the SQL commit and full disks: a saved memory is always reported saved (id
printed, indexing deferred), search falls back to keyword, and vector writes, index builds
and backups are refused with a clear message below the free-space reserve (issue 16: items
2, 3, 15).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ephemera_tui.cli.main import app
from ephemera_tui.engine import Draft, Engine, Settings, diskspace
from ephemera_tui.engine.backup import BackupError, create_backup


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    return {
        "EPHEMERA_DATA_DIR": str(tmp_path / "data"),
        "EPHEMERA_DATABASE_URL": db_url,
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "EPHEMERA_SERVICE": "off",
    }


def run(env: dict[str, str], *args: str) -> Any:
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        os.umask(umask)


def _engine(env: dict[str, str]) -> Engine:
    return Engine(
        Settings(
            data_dir=Path(env["EPHEMERA_DATA_DIR"]),
            database_url=env["EPHEMERA_DATABASE_URL"],
            embedding_model="fake-hash-384",
        )
    )


def _saved_and_deferred(result: Any, env: dict[str, str], reason: str) -> int:
    """``add`` printed the id of the one stored memory and said indexing is deferred."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    memory_id = int(result.stdout.strip())
    assert "saved; semantic indexing deferred" in result.stderr and reason in result.stderr
    with _engine(env) as engine:
        assert [m.id for m in engine.iter_all()] == [memory_id]
        assert engine.pending() == 1
    return memory_id


def test_an_unreadable_models_dir_still_reports_the_saved_id(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine import core

    def unreadable(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied", "/models/all-MiniLM")

    monkeypatch.setattr(core, "load_embedder", unreadable)
    _saved_and_deferred(run(env, "add", "walked by the lake"), env, "Permission denied")
    found = run(env, "search", "lake")
    assert found.exit_code == 0, found.stderr
    assert "walked by the lake" in found.stdout
    assert "keyword results only" in found.stderr


def test_an_unreadable_vectors_dir_still_reports_the_saved_id(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine.vectors import manager

    def unreadable(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied", "/data/vectors")

    monkeypatch.setattr(manager, "open_vectors", unreadable)
    _saved_and_deferred(run(env, "add", "walked by the lake"), env, "Permission denied")
    found = run(env, "search", "lake")
    assert found.exit_code == 0 and "walked by the lake" in found.stdout
    assert "keyword results only" in found.stderr


def test_a_failing_vector_write_after_the_commit_is_reported_as_saved(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any failure after the SQL commit (here a SQL error while clearing the outbox)."""
    from ephemera_tui.engine.store.sql import SqlStore

    def broken(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SqlStore, "outbox_for", broken)
    result = run(env, "add", "a memory")
    assert result.exit_code == 0, result.stderr
    int(result.stdout.strip())


def test_below_the_reserve_vector_writes_wait_and_nothing_dies(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diskspace, "free_bytes", lambda _path: 10 << 20)  # 10 MiB free
    _saved_and_deferred(run(env, "add", "first"), env, "vector write refused: 10 MiB free")
    synced = run(env, "sync")
    assert "vector write refused" in synced.stdout + synced.stderr
    monkeypatch.undo()
    assert run(env, "sync").exit_code == 0
    with _engine(env) as engine:
        assert engine.pending() == 0


def test_below_the_reserve_backups_and_index_builds_are_refused(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ephemera_tui.engine.vectors.index import build_index

    with _engine(env) as engine:
        engine.add(Draft("one"))
        monkeypatch.setattr(diskspace, "free_bytes", lambda _path: 1 << 20)
        with pytest.raises(BackupError, match="backup refused: 1 MiB free"):
            create_backup(engine, tmp_path / "sets")
        assert not (tmp_path / "sets").exists() or not any((tmp_path / "sets").iterdir())
        with pytest.raises(Exception, match="refused"):
            build_index(engine)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MiB filesystem (tmpfs), when this process may mount one."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_data_dir_on_a_nearly_full_filesystem(small_fs: Path, tmp_path: Path) -> None:
    """The real thing: a data dir on a 16 MiB filesystem, below the 64 MiB reserve. Before,
    the vector engine's mapped files could kill the process (SIGBUS) after the commit."""
    (tmp_path / "none.toml").write_text("")
    env = {
        "EPHEMERA_DATA_DIR": str(small_fs / "data"),
        "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
        "EPHEMERA_CONFIG": str(tmp_path / "none.toml"),
        "EPHEMERA_SERVICE": "off",
    }
    env["EPHEMERA_DATABASE_URL"] = f"sqlite:///{small_fs / 'data' / 'ephemera.db'}"
    _saved_and_deferred(run(env, "add", "on a small disk"), env, "vector write refused")
    backup = run(env, "backup")
    assert backup.exit_code == 1 and "backup refused" in backup.stderr
    assert run(env, "search", "small").exit_code == 0


def test_a_connection_lost_during_commit_is_checked_before_failing(
    mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server committed, then the connection dropped before the answer: the row exists,
    so the write is reported as saved (not failed, which a retry would duplicate)."""
    import pymysql

    settings = Settings(
        data_dir=tmp_path / "data", database_url=mysql_url, embedding_model="fake-hash-384"
    )
    real_commit = pymysql.connections.Connection.commit
    marker = f"lost-{uuid.uuid4().hex[:6]}"

    def commit_then_drop(self: Any) -> None:
        real_commit(self)
        if getattr(commit_then_drop, "armed", False):
            commit_then_drop.armed = False  # type: ignore[attr-defined]
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server")

    with Engine(settings) as engine:
        monkeypatch.setattr(pymysql.connections.Connection, "commit", commit_then_drop)
        commit_then_drop.armed = True  # type: ignore[attr-defined]
        memory = engine.add(Draft(marker))
        assert [m.content for m in engine.iter_all()] == [marker]
        assert engine.get(memory.id).content == marker
        json.dumps(memory.to_dict())
