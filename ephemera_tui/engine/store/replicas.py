"""Read replicas: which MySQL/MariaDB replica may answer a read, and when the primary must.

The store sends search, browse, timeline and report reads here (``SqlStore.read(
replica_ok=True)``); everything else, and every write, stays on the primary. A replica is
used only while it is reachable, replicating and no further behind than ``max_lag_s``; its
state is read (``SHOW REPLICA STATUS``) at most once every ``check_every`` seconds, so a read
costs nothing extra while nothing changes.

Read-your-writes: after each write the store records the primary's GTID position
(:meth:`ReplicaSet.wrote`). Until a replica has applied that position (``MASTER_GTID_WAIT``
with no wait on MariaDB, ``GTID_SUBSET`` against ``gtid_executed`` on MySQL) this process
reads from the primary; other processes' writes reach it within the lag limit. The same
holds from the start: a process reads from the primary until a replica has caught up with
the primary's position when the process opened the database (migrations included).

A replica that is down, stopped or lagging is skipped with a notice in the log and in
:meth:`ReplicaSet.states` (shown by stats), never an error: the primary answers instead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .connection import describe_url, driver_code

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
"""How often a replica's replication state is read again (at most; only when reads come)."""
DOWN_BACKOFF_S = (1.0, 30.0)
"""A replica that cannot be reached is tried again after 1 s, doubling up to 30 s."""
CONNECT_TIMEOUT_S = 2
"""Connect timeout for replicas: a dead one must not hold a read up for long."""

# What a replica can be. Only "ok" takes reads.
OK, LAGGING, STOPPED, DOWN, NOT_REPLICA, NO_PRIVILEGE = (
    "ok",
    "lagging",
    "stopped",
    "down",
    "not a replica",
    "no privilege",
)
_PRIVILEGE_CODES = frozenset({1227, 1142, 1044, 1045})  # access denied / needs a privilege


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """One replica as the last check saw it, and what it has served.

    ``lag_s`` is ``Seconds_Behind_Master`` (None while replication is stopped or the replica
    is unreachable); ``reads`` counts reads it answered, ``skipped`` reads it could not take
    (down, stopped, lagging) and ``behind_own_writes`` reads sent to the primary because it had
    not applied this process's last write yet."""

    url: str
    status: str
    lag_s: float | None
    notice: str | None
    checked_at: float | None
    reads: int
    skipped: int
    behind_own_writes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _merge_mariadb_gtids(current: dict[int, tuple[int, int]], position: str) -> None:
    """Fold a MariaDB GTID list (``domain-server-seq,…``) into ``current``, keeping the
    highest sequence number per domain (one domain's GTIDs are ordered)."""
    for part in position.split(","):
        pieces = part.strip().split("-")
        if len(pieces) != 3 or not all(p.isdigit() for p in pieces):
            continue
        domain, server, seq = (int(p) for p in pieces)
        if domain not in current or current[domain][1] < seq:
            current[domain] = (server, seq)


class Replica:
    """One replica: its pool, its last known state, and which of our writes it has applied."""

    def __init__(self, url: str, mariadb: bool, max_lag_s: float, check_every: float) -> None:
        self.url = url
        self.described = describe_url(url)
        self.mariadb = mariadb
        self.max_lag_s = max_lag_s
        self.check_every = check_every
        parsed = make_url(url)
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        self.engine: Engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_recycle=3600,
            pool_size=5,
            max_overflow=10,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT_S,
                "read_timeout": 30,
                "write_timeout": 30,
            },
        )
        self.status = DOWN
        self.lag_s: float | None = None
        self.notice: str | None = "not checked yet"
        self.checked_at: float | None = None  # Unix seconds of the last check
        self._next_check = 0.0  # monotonic
        self._failures = 0
        self._applied: str | None = None  # the last own-write position seen applied here
        self._lock = threading.Lock()
        self.reads = 0
        self.skipped = 0
        self.behind_own_writes = 0

    # ------------------------------------------------------------------ state

    def refresh(self, force: bool = False) -> str:
        """Read the replication state again if the last check is old; return the status."""
        now = time.monotonic()
        with self._lock:
            if not force and now < self._next_check:
                return self.status
            before = self.status
            try:
                with self.engine.connect() as conn:
                    status, lag, notice = self._read_status(conn)
                self._failures = 0
                self._next_check = now + self.check_every
            except SQLAlchemyError as exc:
                status, lag = DOWN, None
                notice = f"unreachable: {_one_line(exc)}"
                self._failures += 1
                low, high = DOWN_BACKOFF_S
                self._next_check = now + min(high, low * 2 ** (self._failures - 1))
            self.status, self.lag_s, self.notice = status, lag, notice
            self.checked_at = time.time()
        if status != before:
            if status == OK:
                log.info("read replica %s in use again (lag %ss)", self.described, lag)
            elif before == OK or self._failures <= 1:
                log.warning("read replica %s skipped: %s", self.described, notice)
        return status

    def _read_status(self, conn: Connection) -> tuple[str, float | None, str | None]:
        try:
            row = conn.exec_driver_sql("SHOW REPLICA STATUS").mappings().first()
        except SQLAlchemyError as exc:
            code = driver_code(exc)
            if code in _PRIVILEGE_CODES:
                return (
                    NO_PRIVILEGE,
                    None,
                    "cannot read its replication state: grant the read user REPLICA "
                    "MONITOR (MariaDB) or REPLICATION CLIENT (MySQL)",
                )
            if code != 1064:  # a server older than SHOW REPLICA STATUS answers with a syntax error
                raise
            row = conn.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
        if row is None:
            return NOT_REPLICA, None, "the server is not replicating from anywhere"
        values = {str(k).lower(): v for k, v in row.items()}
        io = values.get("replica_io_running", values.get("slave_io_running"))
        sql = values.get("replica_sql_running", values.get("slave_sql_running"))
        lag = values.get("seconds_behind_source", values.get("seconds_behind_master"))
        if str(io) != "Yes" or str(sql) != "Yes":
            error = values.get("last_sql_error") or values.get("last_io_error") or ""
            detail = f": {str(error).splitlines()[0]}" if error else ""
            return STOPPED, None, f"replication stopped (IO {io}, SQL {sql}){detail}"
        if lag is None:
            return STOPPED, None, "replication running but its lag is unknown"
        lag_s = float(lag)
        if lag_s > self.max_lag_s:
            return LAGGING, lag_s, f"{lag_s:g} s behind (limit {self.max_lag_s:g} s)"
        return OK, lag_s, None

    def has_applied(self, position: str | None) -> bool:
        """Whether this replica has applied everything up to our write ``position`` (no
        waiting: one cheap query, and none once it was seen applied)."""
        if not position or position == self._applied:
            return True
        try:
            with self.engine.connect() as conn:
                if self.mariadb:
                    done = conn.execute(
                        text("SELECT MASTER_GTID_WAIT(:pos, 0)"), {"pos": position}
                    ).scalar()
                    applied = done == 0
                else:
                    done = conn.execute(
                        text("SELECT GTID_SUBSET(:pos, @@GLOBAL.gtid_executed)"),
                        {"pos": position},
                    ).scalar()
                    applied = bool(done)
        except SQLAlchemyError as exc:
            self.failed(exc)
            return False
        if applied:
            self._applied = position
        return applied

    def failed(self, exc: BaseException) -> None:
        """A read on this replica failed: skip it until the next check says otherwise."""
        with self._lock:
            self.status, self.lag_s = DOWN, None
            self.notice = f"a read failed: {_one_line(exc)}"
            self._failures += 1
            self._next_check = time.monotonic() + DOWN_BACKOFF_S[0]
            self.checked_at = time.time()
        log.warning("read replica %s skipped: %s", self.described, self.notice)

    def state(self) -> ReplicaState:
        return ReplicaState(
            self.described,
            self.status,
            self.lag_s,
            self.notice,
            self.checked_at,
            self.reads,
            self.skipped,
            self.behind_own_writes,
        )

    def close(self) -> None:
        self.engine.dispose()


class ReplicaSet:
    """The configured replicas of one primary, taking reads in turn.

    ``primary`` is the primary's SQLAlchemy engine (its flavour and starting GTID position
    are read from it once). Thread-safe: the store reads from several threads.
    """

    def __init__(
        self,
        urls: Sequence[str],
        primary: Engine,
        *,
        max_lag_s: float = 5.0,
        check_every: float = CHECK_EVERY_S,
    ) -> None:
        with primary.connect() as conn:
            version = str(conn.exec_driver_sql("SELECT VERSION()").scalar() or "")
            self.mariadb = "mariadb" in version.lower()
            start = self._position(conn, global_position=True)
        self.replicas = [Replica(u, self.mariadb, max_lag_s, check_every) for u in urls]
        self._gtids: dict[int, tuple[int, int]] = {}
        self._mysql_position: str | None = None
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._note(start)

    @property
    def max_lag_s(self) -> float:
        return self.replicas[0].max_lag_s if self.replicas else 0.0

    def set_check_every(self, seconds: float) -> None:
        """How often replication state is re-read (tests make it 0: every read)."""
        for replica in self.replicas:
            replica.check_every = seconds
            replica._next_check = 0.0

    # ------------------------------------------------------------------ our writes

    def _position(self, conn: Connection, global_position: bool = False) -> str | None:
        if self.mariadb:
            query = "SELECT @@GLOBAL.gtid_binlog_pos" if global_position else "SELECT @@last_gtid"
        else:
            query = "SELECT @@GLOBAL.gtid_executed"
        try:
            value = conn.exec_driver_sql(query).scalar()
        except SQLAlchemyError as exc:
            log.warning("cannot read the primary's GTID position: %s", _one_line(exc))
            return None
        return str(value).strip() or None if value is not None else None

    def wrote(self, conn: Connection) -> None:
        """Record the GTID of the transaction just committed on ``conn`` (the primary)."""
        self._note(self._position(conn))

    def _note(self, position: str | None) -> None:
        if not position:
            return
        with self._lock:
            if self.mariadb:
                _merge_mariadb_gtids(self._gtids, position)
            else:
                self._mysql_position = position  # gtid_executed only grows

    @property
    def own_position(self) -> str | None:
        """The GTID position a replica must have applied before it reads for this process."""
        with self._lock:
            if not self.mariadb:
                return self._mysql_position
            if not self._gtids:
                return None
            return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self._gtids.items()))

    # ------------------------------------------------------------------ choosing

    def pick(self) -> Replica | None:
        """A replica fit to answer a read for this process now, or None (use the primary)."""
        if not self.replicas:
            return None
        start = next(self._turn) % len(self.replicas)
        order = self.replicas[start:] + self.replicas[:start]
        position = self.own_position
        for replica in order:
            if replica.refresh() != OK:
                replica.skipped += 1
                continue
            if not replica.has_applied(position):
                replica.behind_own_writes += 1
                continue
            return replica
        return None

    @contextmanager
    def connect(self) -> Iterator[tuple[Connection, Replica] | None]:
        """A connection to a usable replica, or None when the primary must answer."""
        replica = self.pick()
        if replica is None:
            yield None
            return
        try:
            conn = replica.engine.connect()
        except SQLAlchemyError as exc:
            replica.failed(exc)
            yield None
            return
        with conn:
            replica.reads += 1
            yield conn, replica

    def run(self, query: Callable[[Connection], Any]) -> tuple[bool, Any]:
        """Run ``query`` on a usable replica: ``(True, result)``, or ``(False, None)`` when
        none could (no usable replica, or the read failed there: the primary must answer)."""
        with self.connect() as found:
            if found is None:
                return False, None
            conn, replica = found
            try:
                return True, query(conn)
            except SQLAlchemyError as exc:
                replica.failed(exc)
                return False, None

    def states(self, refresh: bool = True) -> list[ReplicaState]:
        """Every replica's state (re-checked first when the last check is old)."""
        if refresh:
            for replica in self.replicas:
                replica.refresh()
        return [r.state() for r in self.replicas]

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()


def _one_line(exc: BaseException) -> str:
    detail = str(getattr(exc, "orig", exc)) or type(exc).__name__
    return detail.splitlines()[0][:300]
