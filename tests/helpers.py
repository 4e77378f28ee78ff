"""Running the ``ephemera`` command from tests, in one of two ways with one result type.

``run_ephemera`` starts a real ``python -m ephemera_tui.cli`` process: for tests about separate
processes (locks, ``kill -9``, the module entry point). ``invoke_ephemera`` runs the same
command in this process through Typer's ``CliRunner``, which is much faster; use it whenever a
second process is not the point of the test. Both return a ``CompletedProcess[str]`` with the
exit code and stdout and stderr kept apart, so a test can switch between them freely.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

EPHEMERA: list[str] = [sys.executable, "-m", "ephemera_tui.cli"]
"""The command line of a real ``ephemera`` process (for ``subprocess.Popen``)."""


def run_ephemera(
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``ephemera ARGS`` in a new process and wait for it (``timeout`` seconds at most)."""
    return subprocess.run(
        [*EPHEMERA, *args],
        env=None if env is None else dict(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def invoke_ephemera(
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``ephemera ARGS`` in this process with Typer's ``CliRunner``.

    ``env`` is applied to ``os.environ`` for the call only. An exception the command does not
    turn into a one-line error propagates (the test fails with its traceback) instead of
    being reported as an exit code.
    """
    from typer.testing import CliRunner

    from ephemera_tui.cli import app

    result = CliRunner().invoke(
        app,
        list(args),
        env=None if env is None else dict(env),
        input=input,
        catch_exceptions=False,
    )
    return subprocess.CompletedProcess(
        ["ephemera", *args], result.exit_code, result.stdout, result.stderr
    )


def migrate_to(url: str, revision: str) -> None:
    """Bring the database at ``url`` to one schema revision (an older one, to test upgrades)."""
    from alembic import command
    from alembic.config import Config

    from ephemera_tui.engine.store.connection import MIGRATIONS_DIR, make_sql_engine

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sql = make_sql_engine(url)
    try:
        with sql.connect().execution_options(ephemera_write=True) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        sql.dispose()


def copy_sparse(src: str, dst: str) -> str:
    """Copy one file and keep its holes (a ``shutil.copytree`` ``copy_function``).

    An embedded vector shard maps files of 2-32 MB that are mostly unwritten (about 190 MB
    in all, a few MB on disk); a plain copy writes every zero, so each test that copies a
    seeded data directory would cost 190 MB of disk and the time to write it."""
    import errno
    import os
    import shutil

    with open(src, "rb") as source, open(dst, "wb") as target:
        size = os.fstat(source.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                start = os.lseek(source.fileno(), offset, os.SEEK_DATA)
                end = os.lseek(source.fileno(), start, os.SEEK_HOLE)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole past offset
                    break
                start, end = offset, size  # no SEEK_DATA here: copy the rest as it is
            except AttributeError:
                start, end = offset, size
            source.seek(start)
            target.seek(start)
            target.write(source.read(end - start))
            offset = end
        target.truncate(size)
    shutil.copystat(src, dst)
    return dst
