"""The command line honours every setting, read once from flags, environment and the file:
``--data-dir`` under ``python -m`` too, ``backup_dir`` for ``ephemera backup``, and
``backup_every_hours`` for ``ephemera worker``."""

from __future__ import annotations

from pathlib import Path

from ephemera_tui.engine.backup.sets import list_backups
from tests.helpers import invoke_ephemera, run_ephemera


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    result = invoke_ephemera(*args, env=env)
    return result.returncode, result.stdout, result.stderr


def test_module_entry_point_honours_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    env = {"EPHEMERA_CONFIG": str(tmp_path / "none.toml"), "PATH": "/usr/bin:/bin"}
    (tmp_path / "none.toml").write_text("")
    done = run_ephemera("--data-dir", str(data), "migrate", "meili", "status", env=env)
    assert done.returncode == 0, done.stderr
    assert (data / "ephemera.db").exists()  # the status was read from the given data dir


def test_backup_goes_to_the_configured_backup_dir(tmp_path: Path, cli_env: dict[str, str]) -> None:
    target = tmp_path / "my-backups"
    Path(cli_env["EPHEMERA_CONFIG"]).write_text(f'backup_dir = "{target}"\n')
    assert invoke(["add", "a memory worth keeping"], cli_env)[0] == 0
    code, out, err = invoke(["backup"], cli_env)
    assert code == 0, err
    assert len(list_backups(target)) == 1
    assert out.strip().startswith(str(target))


def test_worker_takes_backup_every_hours_from_settings(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "EPHEMERA_BACKUP_EVERY_HOURS": "0"}
    assert invoke(["add", "a memory"], env)[0] == 0
    code, _, err = invoke(["worker", "--once"], env)
    assert code == 0, err
    assert not (tmp_path / "data" / "backups").exists()  # 0 turns scheduled backups off
    code, _, err = invoke(["worker", "--once"], cli_env)  # the default: one is due at once
    assert code == 0, err
    assert len(list_backups(tmp_path / "data" / "backups")) == 1


def test_bad_settings_are_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    for name, value, expected in [
        ("EPHEMERA_RRF_K", "-1", "rrf_k"),
        ("EPHEMERA_HNSW_EF", "-5", "hnsw_ef"),
        ("EPHEMERA_INDEX_THRESHOLD", "1e999", "index_threshold"),
        ("EPHEMERA_EMBEDDING_CACHE_SIZE", "-1", "embedding_cache_size"),
        ("EPHEMERA_SEMANTIC_WEIGHT", "nan", "semantic_weight"),
        ("EPHEMERA_DATABASE_URL", "mysql://root@127.0.0.1/x", "mysql+pymysql"),
        ("EPHEMERA_DATABASE_URL", "sqlite://", "in-memory"),
        ("EPHEMERA_KEYS", "garbage", "[keys]"),
    ]:
        code, out, err = invoke(["stats"], {**cli_env, name: value})
        assert code == 1, (name, out, err)
        assert expected in err and len(err.strip().splitlines()) == 1, (name, err)
