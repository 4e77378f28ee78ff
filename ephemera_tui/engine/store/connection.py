"""Connecting to the SQL database: SQLite (WAL, busy timeout) or pooled pymysql on MySQL,
schema migrations through Alembic, and the error classification retries decide on."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from ..errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_CACHE_KIB = 32_768  # page cache per connection
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def is_mysql(engine: Engine | Connection) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def describe_url(url: str) -> str:
    """The database URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


# Driver error codes the store decides on (never on message text).
SQLITE_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (and their extended forms)
SQLITE_CONSTRAINT_UNIQUE_CODES = frozenset({1555, 2067})  # PRIMARYKEY, UNIQUE
MYSQL_DUPLICATE_CODES = frozenset({1062, 1586})  # ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME
MYSQL_RETRY_CODES = frozenset({1205, 1213})  # lock wait timeout, deadlock victim
MYSQL_GONE_CODES = frozenset({2002, 2003, 2006, 2013, 1040, 1045, 1049})


def driver_code(exc: BaseException) -> int | None:
    """The numeric error code of a DBAPI error (sqlite3 or pymysql), wrapped or not."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


def database_error(exc: BaseException, url: str) -> DatabaseError:
    """A one-line :class:`DatabaseError` for a driver error, classified by its error code."""
    code = driver_code(exc)
    detail = (str(getattr(exc, "orig", exc)).splitlines() or [type(exc).__name__])[0]
    primary = code & 0xFF if code is not None else None
    duplicate = code in SQLITE_CONSTRAINT_UNIQUE_CODES or code in MYSQL_DUPLICATE_CODES
    retryable = code in MYSQL_RETRY_CODES or primary in SQLITE_BUSY_CODES
    if code in MYSQL_GONE_CODES or exc.__class__.__name__ == "OperationalError" and not retryable:
        message = f"database {describe_url(url)} unavailable: {detail}"
    else:
        message = f"database error: {detail}"
    return DatabaseError(message, duplicate_key=duplicate, retryable=retryable)


def _enable_wal(cursor: Any, wait: float = 30.0) -> None:
    """Put the database in WAL mode (kept in the file once set). Switching a fresh file needs an
    exclusive lock, and SQLite answers "database is locked" at once, without its busy handler,
    when another process opening the same fresh file holds a lock it would deadlock on; so the
    switch is retried for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in SQLITE_BUSY_CODES or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def make_sql_engine(url: str) -> Engine:
    """Create the SQLAlchemy engine: WAL + busy timeout on SQLite, pooled pymysql on MySQL."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError
        raise DatabaseError(f"invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"database {describe_url(url)} unavailable: {exc.strerror or exc}: "
                    f"{Path(parsed.database).parent}"
                ) from exc
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Keyword search with a filter joins each full-text match to its row: with the
            # default 2 MB page cache those lookups go to the OS at 100k memories. Map the
            # file and keep a larger cache (both grow only as pages are read).
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the lock up front so two processes queue instead of failing.
            mode = "IMMEDIATE" if conn.get_execution_options().get("ephemera_write") else ""
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine
    if backend in ("mysql", "mariadb"):
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_recycle=3600,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": 5, "read_timeout": 60, "write_timeout": 60},
        )
    raise DatabaseError(
        f"unsupported database URL {describe_url(url)!r}: use sqlite:///PATH or mysql+pymysql://..."
    )


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """On SQLite, one process migrates at a time (a file lock beside the database): Alembic
    reads the current revision before its own transaction, so two fresh starts would both
    create the same tables."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import portalocker

    with portalocker.Lock(
        f"{database}.migrate.lock", mode="a+", timeout=120, fail_when_locked=False
    ):
        yield


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision through Alembic (fast no-op when current)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
    with (
        _sqlite_migration_lock(engine),
        engine.connect().execution_options(ephemera_write=True) as conn,
    ):
        mysql = is_mysql(engine)
        if mysql:
            # MySQL DDL is not transactional: two processes opening a fresh database at once
            # would both create the tables. One migrates; the other waits, then finds it done.
            conn.exec_driver_sql("SELECT GET_LOCK(CONCAT('ephemera_migrate:', DATABASE()), 120)")
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if mysql:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(CONCAT('ephemera_migrate:', DATABASE()))")
                conn.commit()
