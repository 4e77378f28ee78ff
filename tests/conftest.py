"""Shared fixtures: every engine test runs on SQLite and on the real MariaDB/MySQL server.

The MySQL server is ``$EPHEMERA_TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306``);
each test gets a scratch database that is dropped afterwards. Outside CI the MySQL tests skip
with a reason when no server answers; with ``EPHEMERA_REQUIRE_MYSQL=1`` (set by ``.ci/run``)
they fail instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings

MYSQL_SERVER = os.environ.get("EPHEMERA_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REQUIRE_MYSQL = os.environ.get("EPHEMERA_REQUIRE_MYSQL") == "1"
FIXED_NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FixedClock:
    """A clock that stands still unless moved; ids still advance (the allocator bumps them)."""

    def __init__(self, now: float = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fill_numbered(engine: Engine, count: int) -> None:
    """Import ``count`` short notes (41 topics, 13 themes, 5 tags) one second apart."""
    rows = (
        (
            Draft(
                f"note {i} on topic{i % 41} and theme{i % 13}",
                created_at=1_600_000_000 + i,
                tags=(f"t{i % 5}",),
            ),
            None,
        )
        for i in range(count)
    )
    engine.import_drafts(rows, batch_size=2000)


def _mysql_admin() -> object:
    from sqlalchemy import create_engine

    return create_engine(MYSQL_SERVER + "/", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MySQL server URL (without database), or skip/fail when none answers."""
    from sqlalchemy import text

    try:
        engine = _mysql_admin()
        with engine.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text("SELECT 1"))
        engine.dispose()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        message = f"MariaDB/MySQL not reachable at {MYSQL_SERVER}: {str(exc).splitlines()[0]}"
        if REQUIRE_MYSQL:
            pytest.fail(message)
        pytest.skip(message)
    return MYSQL_SERVER


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """A fresh scratch database on the MySQL server, dropped after the test."""
    from sqlalchemy import text

    name = f"ephemera_test_{uuid.uuid4().hex[:12]}"
    admin = _mysql_admin()
    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield f"{mysql_server}/{name}"
    finally:
        with admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a MySQL scratch database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ephemera.db'}"
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings on a temporary data dir, the fake embedder, and the parametrised database."""
    return Settings(
        data_dir=tmp_path / "data", database_url=db_url, embedding_model="fake-hash-384"
    )


@pytest.fixture
def engine(settings: Settings, clock: FixedClock) -> Iterator[Engine]:
    eng = Engine(settings, clock=clock)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """Environment for running ``ephemera`` in a subprocess against the test database."""
    env = dict(os.environ)
    env.update(
        EPHEMERA_DATA_DIR=str(tmp_path / "data"),
        EPHEMERA_DATABASE_URL=db_url,
        EPHEMERA_EMBEDDING_MODEL="fake-hash-384",
        EPHEMERA_CONFIG=str(tmp_path / "none.toml"),
    )
    (tmp_path / "none.toml").write_text("")
    return env


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the faults tests/test_faults.py injected, when it ran (what each test broke)."""
    faults = next(
        (m for name, m in sys.modules.items() if name.rsplit(".", 1)[-1] == "test_faults"), None
    )
    injected = getattr(faults, "FAULTS", None)
    if injected:
        terminalreporter.write_sep("-", "faults injected")
        for kind, count in sorted(injected.items()):
            terminalreporter.write_line(f"{count:5d}  {kind}")
