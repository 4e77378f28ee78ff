"""Point-in-time recovery on MySQL/MariaDB: where in the binary log a backup set's snapshot
stands, and replaying the binlog from there up to a moment, for Ephemera's tables only.

A set made on a server with the binlog on records ``manifest["binlog"]``: the file and
position (and GTID position) its consistent snapshot corresponds to. On MariaDB that is
exact (``binlog_snapshot_file``/``binlog_snapshot_position`` of the snapshot transaction);
on MySQL the snapshot is retried until no transaction committed while it started, so the
GTID set read around it is exact too.

``ephemera restore SET --until WHEN`` restores the set, then :func:`replay` fetches the
binlog files from the server (``mariadb-binlog``/``mysqlbinlog --read-from-remote-server
--raw``, or a folder of copied binlog files), decodes them from the recorded position up to
WHEN, keeps the events of ``memory_fragments``, ``memory_tags`` and ``vector_outbox`` (the
tables a set holds) and applies them to the target database in order. Everything else in
the binlog (other databases, other tables, DDL) is left out and counted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..errors import EphemeraError

if TYPE_CHECKING:
    from ..core import Engine
    from .sets import RestoreReport

REPLAYED_TABLES = frozenset({"memory_fragments", "memory_tags", "vector_outbox"})
"""The tables a backup set holds, and so the only ones the binlog replay writes."""
SNAPSHOT_ATTEMPTS = 20
"""MySQL: how often a snapshot is started again when a commit slipped in while it started."""


class BinlogError(EphemeraError):
    """Point-in-time recovery is impossible or failed (with a one-line reason)."""


@dataclass(slots=True)
class ReplayReport:
    """What a binlog replay applied: row-event statements and plain statements kept,
    transactions, and what was left out (other tables or databases, DDL)."""

    until: str
    files: list[str] = field(default_factory=list)
    row_events: int = 0
    statements: int = 0
    transactions: int = 0
    skipped: int = 0
    skipped_ddl: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- at backup time


def start_snapshot(conn: Connection) -> dict[str, Any] | None:
    """``START TRANSACTION WITH CONSISTENT SNAPSHOT`` on ``conn``, and the binlog position
    the snapshot stands at (None when the server's binlog is off).

    The caller reads the dump inside the transaction this starts."""
    enabled = conn.exec_driver_sql("SELECT @@GLOBAL.log_bin").scalar()
    if not enabled or str(enabled) in ("0", "OFF"):
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        return None
    version = str(conn.exec_driver_sql("SELECT VERSION()").scalar() or "")
    common = {
        "server_id": int(conn.exec_driver_sql("SELECT @@GLOBAL.server_id").scalar() or 0),
        "format": str(conn.exec_driver_sql("SELECT @@GLOBAL.binlog_format").scalar() or ""),
        "database": conn.exec_driver_sql("SELECT DATABASE()").scalar(),
    }
    if "mariadb" in version.lower():
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        status = {
            str(k).lower(): v
            for k, v in conn.exec_driver_sql(
                "SHOW STATUS WHERE Variable_name IN "
                "('binlog_snapshot_file', 'binlog_snapshot_position')"
            ).all()
        }
        file, position = status.get("binlog_snapshot_file"), status.get("binlog_snapshot_position")
        gtid = conn.execute(
            text("SELECT BINLOG_GTID_POS(:file, :pos)"), {"file": file, "pos": int(position or 0)}
        )
        return {
            "flavor": "mariadb",
            "file": str(file),
            "position": int(position or 0),
            "gtid": str(gtid.scalar() or ""),
            "exact": True,
            **common,
        }
    before: tuple[Any, ...] = ()
    for _attempt in range(SNAPSHOT_ATTEMPTS):
        before = _mysql_status(conn)
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        if _mysql_status(conn) == before:
            break
        conn.exec_driver_sql("ROLLBACK")  # a commit slipped in between: start again
    else:
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        before = _mysql_status(conn)
    file, position, gtids = before
    return {
        "flavor": "mysql",
        "file": str(file),
        "position": int(position),
        "gtid": str(gtids or ""),
        "exact": _mysql_status(conn) == before,
        **common,
    }


def _mysql_status(conn: Connection) -> tuple[Any, ...]:
    try:
        row = conn.exec_driver_sql("SHOW BINARY LOG STATUS").mappings().first()
    except SQLAlchemyError:  # before 8.2
        row = conn.exec_driver_sql("SHOW MASTER STATUS").mappings().first()
    if row is None:
        return ("", 0, "")
    values = {str(k).lower(): v for k, v in row.items()}
    return (values.get("file"), values.get("position"), values.get("executed_gtid_set"))


# ---------------------------------------------------------------------------- at restore time


def binlog_position(manifest: dict[str, Any], set_dir: Path) -> dict[str, Any]:
    """The set's recorded binlog position, checked; BinlogError when it has none."""
    info = manifest.get("binlog")
    if info is None:
        raise BinlogError(
            f"backup set {set_dir} records no binlog position (made on SQLite, or on a "
            "server with the binary log off): it can only be restored as it is"
        )
    if not isinstance(info, dict):
        raise BinlogError(f"backup set {set_dir}: manifest field binlog: expected an object")
    file, position = info.get("file"), info.get("position")
    if not isinstance(file, str) or not re.fullmatch(r"[\w.-]+", file):
        raise BinlogError(f"backup set {set_dir}: manifest field binlog.file: {file!r}")
    if isinstance(position, bool) or not isinstance(position, int) or position < 4:
        raise BinlogError(f"backup set {set_dir}: manifest field binlog.position: {position!r}")
    if info.get("flavor") not in ("mariadb", "mysql"):
        raise BinlogError(f"backup set {set_dir}: manifest field binlog.flavor unknown")
    return info


def _tool(flavor: str) -> tuple[str, bool]:
    """The binlog decoder for this server flavour, and whether it is MariaDB's."""
    names = ("mariadb-binlog", "mysqlbinlog") if flavor == "mariadb" else ("mysqlbinlog",)
    for name in names:
        found = shutil.which(name)
        if found is None:
            continue
        done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
        mariadb = "mariadb" in (done.stdout + done.stderr).lower()
        if (flavor == "mariadb") == mariadb:
            return found, mariadb
    wanted = "mariadb-binlog (MariaDB client)" if flavor == "mariadb" else "mysqlbinlog (MySQL)"
    raise BinlogError(f"point-in-time recovery needs {wanted} on this machine's PATH")


@contextlib.contextmanager
def _client_options(url: str) -> Iterator[list[str]]:
    """Connection options for a MySQL client tool from a database URL; the password goes in
    a private option file, never on the command line."""
    parsed = make_url(url)
    lines = ["[client]"]
    if parsed.username:
        lines.append(f"user={parsed.username}")
    if parsed.password:
        lines.append(f'password="{parsed.password}"')
    if parsed.host:
        lines.append(f"host={parsed.host}")
    if parsed.port:
        lines.append(f"port={parsed.port}")
    socket_path = parsed.query.get("unix_socket")
    if isinstance(socket_path, str):
        lines.append(f"socket={socket_path}")
    handle, path = tempfile.mkstemp(prefix="ephemera-client-", suffix=".cnf")
    try:
        with os.fdopen(handle, "w") as out:
            out.write("\n".join(lines) + "\n")
        yield [f"--defaults-file={path}"]
    finally:
        Path(path).unlink(missing_ok=True)


def _sequence(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition(".")
    return base, int(number) if number.isdigit() else -1


def fetch_binlogs(tool: str, source: str, first: str, into: Path) -> list[Path]:
    """The binlog files from ``first`` on, as local files: downloaded from the server at
    ``source`` (a database URL) or taken from ``source`` when it is a folder."""
    base, number = _sequence(first)
    folder = Path(source).expanduser()
    if "://" not in source:
        if not folder.is_dir():
            raise BinlogError(f"{source}: not a folder of binlog files")
        found = sorted(
            (p for p in folder.iterdir() if _sequence(p.name)[0] == base),
            key=lambda p: _sequence(p.name)[1],
        )
        files = [p for p in found if _sequence(p.name)[1] >= number]
        if not files or files[0].name != first:
            raise BinlogError(f"{folder}: has no {first} (the binlog the backup set starts in)")
        return files
    with _client_options(source) as options:
        done = subprocess.run(
            [
                tool,
                *options,
                "--read-from-remote-server",
                "--raw",
                "--to-last-log",
                f"--result-file={into}{os.sep}",
                first,
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BinlogError(
            f"cannot read the binlog from {_describe(source)} from {first}: "
            f"{detail[-1] if detail else 'exit ' + str(done.returncode)} (purged? the binlog "
            "must reach back to the backup set)"
        )
    files = sorted(
        (p for p in into.iterdir() if _sequence(p.name)[0] == base),
        key=lambda p: _sequence(p.name)[1],
    )
    if not files:
        raise BinlogError(f"no binlog files came from {_describe(source)}")
    return files


def _describe(url: str) -> str:
    from ..store import describe_url

    return describe_url(url)


# ---------------------------------------------------------------------------- the filter

_TABLE_MAP = re.compile(r"Table_map: `((?:[^`]|``)+)`\.`((?:[^`]|``)+)` mapped to number")
_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_DML = re.compile(
    rf"^\s*(?:INSERT|REPLACE)(?:\s+(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE))*\s+(?:INTO\s+)?"
    rf"(?P<a>{_NAME}(?:\s*\.\s*{_NAME})?)"
    rf"|^\s*UPDATE(?:\s+(?:LOW_PRIORITY|IGNORE))*\s+(?P<b>{_NAME}(?:\s*\.\s*{_NAME})?)"
    rf"|^\s*DELETE(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE))*\s+FROM\s+"
    rf"(?P<c>{_NAME}(?:\s*\.\s*{_NAME})?)",
    re.IGNORECASE,
)
_KEEP = re.compile(
    r"^\s*(?:START\s+TRANSACTION|BEGIN|COMMIT|ROLLBACK|XA\s|SAVEPOINT|RELEASE\s+SAVEPOINT|"
    r"SET\s|/\*M?!\d*\s*SET\s)",
    re.IGNORECASE,
)
# Session settings that would give replayed transactions the source's GTIDs or server id.
_GTID_SET = re.compile(
    r"^\s*(?:/\*M?!\d+\s*)?SET\s+@@(?:session\.)?(?:gtid_seq_no|gtid_domain_id|server_id|"
    r"GTID_NEXT)\s*=",
    re.IGNORECASE,
)
_USE = re.compile(rf"^\s*use\s+(?P<db>{_NAME})\s*$", re.IGNORECASE)


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _split_name(qualified: str) -> tuple[str | None, str]:
    parts = re.findall(_NAME, qualified)
    if len(parts) >= 2:
        return _unquote(parts[0]), _unquote(parts[1])
    return None, _unquote(parts[0])


def statements(lines: Iterable[str]) -> Iterator[tuple[str, set[tuple[str, str]]]]:
    """Split decoder output into ``(statement, tables its row events map)``: comment lines
    (``#``) between statements carry the table maps; ``DELIMITER`` switches the end marker."""
    delimiter = ";"
    buffer: list[str] = []
    tables: set[tuple[str, str]] = set()
    for raw in lines:
        line = raw.rstrip("\n")
        if not buffer:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                found = _TABLE_MAP.search(stripped)
                if found:
                    tables.add((found.group(1).replace("``", "`"), found.group(2)))
                continue
            if stripped.upper().startswith("DELIMITER "):
                delimiter = stripped.split(None, 1)[1]
                continue
        buffer.append(line)
        if line.rstrip().endswith(delimiter):
            text = "\n".join(buffer).rstrip()
            yield text[: len(text) - len(delimiter)].rstrip(), tables
            buffer, tables = [], set()
    if buffer and "".join(buffer).strip():
        yield "\n".join(buffer), tables


def keep_statement(
    statement: str, tables: set[tuple[str, str]], database: str, current: str | None
) -> str:
    """Decide one statement: ``keep``, ``skip`` or ``ddl`` (left out and named), for a
    replay into ``database`` where ``current`` is the default database in force."""
    head = statement.lstrip()
    if head.startswith("/*!\\C") or _GTID_SET.match(head):
        return "skip"  # a client charset command; the source's GTIDs and server id
    if head.upper().startswith("BINLOG "):
        if not tables:
            return "keep"  # the format description event every row event needs
        ours = {t for t in tables if t[0] == database and t[1] in REPLAYED_TABLES}
        if ours == tables:
            return "keep"
        if not ours:
            return "skip"
        raise BinlogError(
            "a row event in the binlog touches Ephemera's tables and others at once "
            f"({', '.join(sorted(f'{d}.{t}' for d, t in tables))}); it cannot be split"
        )
    if _USE.match(head) or _KEEP.match(head):
        return "keep"
    dml = _DML.match(head)
    if dml:
        db, table = _split_name(dml.group("a") or dml.group("b") or dml.group("c"))
        in_db = (db or current) == database
        return "keep" if in_db and table in REPLAYED_TABLES else "skip"
    return "ddl"


# ---------------------------------------------------------------------------- the replay


def until_timestamp(text: str, now: float | None = None) -> int:
    """Unix seconds from ``--until`` (the same forms as ``--at``: ``2026-12-01 10:30``,
    ``yesterday 18:00``, ``20 minutes ago``)."""
    from ..dates import resolve_when

    return resolve_when(text, time.time() if now is None else now, "--until").timestamp


def replay(
    engine: Engine,
    set_dir: Path,
    manifest: dict[str, Any],
    until: int,
    source: str | None = None,
) -> ReplayReport:
    """Apply the binlog from the set's recorded position up to ``until`` (Unix seconds,
    exclusive: events stamped at or after it are not applied) to the engine's database,
    for Ephemera's tables only. ``source``: the server to read the binlog from (a database
    URL; default the engine's database) or a folder of binlog files."""
    info = binlog_position(manifest, set_dir)
    if not engine.store.is_mysql:
        raise BinlogError("the binlog can only be replayed into a MySQL/MariaDB database")
    created = float(manifest.get("created_at") or 0)
    stop = datetime.fromtimestamp(until)
    report = ReplayReport(until=stop.strftime("%Y-%m-%d %H:%M:%S"))
    if until < int(created):
        raise BinlogError(
            f"--until {report.until} is before the backup set was taken "
            f"({datetime.fromtimestamp(created):%Y-%m-%d %H:%M:%S}); restore an older set"
        )
    target = make_url(engine.store.url).database or ""
    origin = str(info.get("database") or target)
    tool, mariadb = _tool(str(info["flavor"]))
    server = source or engine.store.url
    with tempfile.TemporaryDirectory(prefix="ephemera-binlog-") as tmp:
        files = fetch_binlogs(tool, server, str(info["file"]), Path(tmp))
        report.files = [f.name for f in files]
        command = [
            tool,
            "--no-defaults",
            f"--start-position={int(info['position'])}",
            f"--stop-datetime={report.until}",
        ]
        if not mariadb:
            command.append("--skip-gtids")
        if origin != target:
            command.append(f"--rewrite-db={origin}->{target}")
        command += [str(f) for f in files]
        decoder = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
        assert decoder.stdout is not None
        try:
            _apply(engine, decoder.stdout, target, report)
        finally:
            decoder.stdout.close()
            error = decoder.stderr.read() if decoder.stderr else ""
            code = decoder.wait()
        if code != 0:
            last = (error.strip().splitlines() or [f"exit {code}"])[-1]
            raise BinlogError(f"{Path(tool).name} failed: {last}")
    # memory_links is derived from the replayed associations, so it is rebuilt, not replayed.
    engine.store.rebuild_links()
    return report


def _check_server(url: str, info: dict[str, Any]) -> None:
    """Refuse a binlog source that is not the server the set was taken on."""
    from sqlalchemy import create_engine

    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            server_id = int(conn.exec_driver_sql("SELECT @@GLOBAL.server_id").scalar() or 0)
    except SQLAlchemyError as exc:
        raise BinlogError(f"cannot reach {_describe(url)} for its binlog: {exc}") from exc
    finally:
        engine.dispose()
    recorded = info.get("server_id")
    if recorded and server_id != recorded:
        raise BinlogError(
            f"{_describe(url)} is server {server_id}, the backup set was taken on server "
            f"{recorded}: name that server's binlog with --binlog-from"
        )


def _apply(engine: Engine, lines: Iterable[str], database: str, report: ReplayReport) -> None:
    """Run the kept statements in order on one connection to the target."""
    raw = engine.store.engine.raw_connection()
    try:
        connection: Any = raw.driver_connection
        connection.autocommit(True)  # the binlog's own BEGIN/COMMIT delimit transactions
        cursor = connection.cursor()
        current: str | None = database
        dirty = False  # the open transaction wrote to our tables
        try:
            for statement, tables in statements(lines):
                verdict = keep_statement(statement, tables, database, current)
                if verdict == "ddl":
                    report.skipped += 1
                    report.skipped_ddl.append(" ".join(statement.split())[:120])
                    continue
                if verdict == "skip":
                    report.skipped += 1
                    continue
                used = _USE.match(statement.lstrip())
                if used:
                    current = _unquote(used.group("db"))
                    if current != database:
                        continue  # statements there are left out; the session stays ours
                head = statement.lstrip().upper()
                if head.startswith("BINLOG ") and tables:
                    report.row_events += 1
                    dirty = True
                elif head.startswith("COMMIT"):
                    report.transactions += int(dirty)
                    dirty = False
                elif not head.startswith(
                    ("BINLOG", "START", "BEGIN", "SET", "/*", "ROLLBACK", "USE")
                ):
                    report.statements += 1
                    dirty = True
                cursor.execute(statement)
        except Exception as exc:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK")
            detail = str(getattr(exc, "args", [exc])[-1] if getattr(exc, "args", None) else exc)
            raise BinlogError(f"binlog replay stopped: {detail.splitlines()[0][:300]}") from exc
        finally:
            cursor.close()
    finally:
        # The replay changed session settings (timestamp, sql_mode, autocommit): this
        # connection must not go back to the pool.
        with contextlib.suppress(Exception):
            raw.invalidate()
        raw.close()


def restore_until(
    engine: Engine, set_dir: Path, until: int, source: str | None = None
) -> tuple[RestoreReport, ReplayReport]:
    """Restore a set into the engine's empty database, replay the binlog up to ``until``,
    then bring the vectors in step (the replayed writes' outbox rows are drained and the
    cross-check re-embeds what the snapshot lacks). Everything that can be checked is
    checked before the target is touched: the set, its binlog position, the moment, the
    decoder and the binlog source."""
    from .sets import load_manifest, restore_backup

    manifest = load_manifest(set_dir)
    info = binlog_position(manifest, set_dir)
    created = float(manifest.get("created_at") or 0)
    if until < int(created):
        raise BinlogError(
            f"--until {datetime.fromtimestamp(until):%Y-%m-%d %H:%M:%S} is before the backup "
            f"set was taken ({datetime.fromtimestamp(created):%Y-%m-%d %H:%M:%S}); restore an "
            "older set"
        )
    if not engine.store.is_mysql:
        raise BinlogError("the binlog can only be replayed into a MySQL/MariaDB database")
    _tool(str(info["flavor"]))
    server = source or engine.store.url
    if "://" in server:
        _check_server(server, info)
    elif not Path(server).expanduser().is_dir():
        raise BinlogError(f"{server}: not a folder of binlog files")
    restored = restore_backup(engine, set_dir)
    try:
        replayed = replay(engine, set_dir, manifest, until, source)
    except BinlogError as exc:
        raise BinlogError(
            f"{exc}; the set itself was restored (empty the database before trying again)"
        ) from exc
    synced = engine.sync()
    checked = engine.check(repair=True)
    restored.reembedded += (
        synced.upserted + len(checked.missing) + len(checked.stale) + len(checked.wrong_model)
    )
    restored.removed += synced.deleted + len(checked.orphaned)
    restored.memories = engine.store.count()
    if checked.vector_status != "ok":
        restored.notes.append(
            f"vector store unavailable: {checked.vector_status}; run `ephemera sync`"
        )
    return restored, replayed
