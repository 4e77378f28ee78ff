"""MariaDB servers of the tests' own: a binlog-enabled primary and a replica on scratch data
dirs and free ports, replicating with GTIDs through a replication user of their own.

The machine's MariaDB runs with the binlog off, so the replica, binlog and point-in-time
recovery tests start these instead. ``mariadb-install-db`` runs once per session (about 4 s);
the replica's data dir is a copy of the fresh one, so it starts in well under a second.
Both are stopped and their directories removed by :meth:`MariaDBPair.stop`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

MARIADBD = shutil.which("mariadbd") or (
    "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
)
INSTALL_DB = shutil.which("mariadb-install-db")
SMALL = [
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    "--max-connections=200",
]


def missing_tools() -> str | None:
    """Why the servers cannot be started here (None: they can)."""
    if MARIADBD is None:
        return "mariadbd is not installed"
    if INSTALL_DB is None:
        return "mariadb-install-db is not installed"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_root() -> list[str]:
    # mariadbd refuses to run as root unless told which user to run as.
    return ["--user=root"] if os.geteuid() == 0 else []


@dataclass
class MariaDB:
    """One mariadbd on ``port`` with its data dir under ``root``."""

    name: str
    root: Path
    port: int
    server_id: int
    binlog: bool
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.root / self.name

    @property
    def socket_path(self) -> Path:
        return self.root / f"{self.name}.sock"

    @property
    def error_log(self) -> Path:
        return self.root / f"{self.name}.err"

    @property
    def server_url(self) -> str:
        """The root URL without a database (root has no password on these servers)."""
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def url(self, database: str, user: str = "root", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"mysql+pymysql://{auth}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        assert MARIADBD is not None
        args = [
            MARIADBD,
            "--no-defaults",
            *_as_root(),
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket_path}",
            f"--pid-file={self.root / (self.name + '.pid')}",
            f"--log-error={self.error_log}",
            f"--server-id={self.server_id}",
            *SMALL,
        ]
        if self.binlog:
            args += [
                f"--log-bin={self.datadir / 'binlog'}",
                "--binlog-format=ROW",
                "--gtid-strict-mode=1",
                "--log-slave-updates=1",
            ]
        else:
            args += ["--read-only=1", f"--relay-log={self.datadir / 'relay'}"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {self.tail()}")
            try:
                self.sql("SELECT 1")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start: {self.tail()}") from None
                time.sleep(0.05)

    def tail(self) -> str:
        try:
            return " | ".join(self.error_log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "no error log"

    def sql(self, *statements: str) -> list[list[object]]:
        """Run statements as root; the rows of the last one."""
        engine = create_engine(self.server_url + "/", connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                rows: list[list[object]] = []
                for statement in statements:
                    result = conn.execute(text(statement))
                    rows = [list(r) for r in result] if result.returns_rows else []
                conn.commit()
                return rows
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass
class MariaDBPair:
    """A primary (binlog, GTIDs) and a replica replicating from it with ``MASTER_USE_GTID``."""

    root: Path
    primary: MariaDB
    replica: MariaDB
    repl_user: str
    repl_password: str

    def replicate(self) -> None:
        """Point the replica at the primary (GTID position) and start replicating."""
        self.replica.sql(
            "STOP SLAVE",
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port}, "
            f"MASTER_USER='{self.repl_user}', MASTER_PASSWORD='{self.repl_password}', "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            "START SLAVE",
        )

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until the replica has applied everything the primary has logged."""
        position = self.primary.sql("SELECT @@gtid_binlog_pos")[0][0]
        if not position:
            return
        done = self.replica.sql(f"SELECT MASTER_GTID_WAIT('{position}', {timeout})")[0][0]
        if done != 0:
            raise RuntimeError(f"the replica did not reach {position} in {timeout} s")

    def create_database(self, name: str) -> None:
        """A database on the primary (it reaches the replica by replication)."""
        self.primary.sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        self.wait_caught_up()

    def drop_database(self, name: str) -> None:
        self.primary.sql(f"DROP DATABASE IF EXISTS {name}")

    def stop(self) -> None:
        try:
            self.replica.stop()
        finally:
            self.primary.stop()
            shutil.rmtree(self.root, ignore_errors=True)


def _install(datadir: Path) -> None:
    assert INSTALL_DB is not None
    done = subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            *_as_root(),
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--innodb-log-file-size=8M",
            "--innodb-buffer-pool-size=32M",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).splitlines()[-5:])
        raise RuntimeError(f"mariadb-install-db failed: {tail}")


def start_pair(root: Path | None = None) -> MariaDBPair:
    """Install, start and connect a primary and a replica; the caller stops them."""
    root = root or Path(tempfile.mkdtemp(prefix="ephemera-mariadb-"))
    template = root / "template"
    _install(template)
    primary = MariaDB("primary", root, free_port(), 1, binlog=True)
    replica = MariaDB("replica", root, free_port(), 2, binlog=False)
    shutil.copytree(template, primary.datadir, symlinks=True)
    shutil.move(str(template), replica.datadir)
    password = secrets.token_hex(8)
    pair = MariaDBPair(root, primary, replica, "ephemera_repl", password)
    try:
        primary.start()
        replica.start()
        primary.sql(
            f"CREATE USER '{pair.repl_user}'@'127.0.0.1' IDENTIFIED BY '{password}'",
            f"GRANT REPLICATION SLAVE ON *.* TO '{pair.repl_user}'@'127.0.0.1'",
        )
        pair.replicate()
        pair.wait_caught_up()
    except BaseException:
        pair.stop()
        raise
    return pair
