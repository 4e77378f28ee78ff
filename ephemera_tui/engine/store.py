"""The SQL side: connection, migrations, the write path with its outbox, keyword search, paging.

SQL is the source of truth. Every write puts the fragment, its tags and an outbox row in one
transaction; the vector store is brought in step afterwards from the outbox.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    and_,
    column,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.mysql import match as mysql_match
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .domain import Draft, Memory, content_hash
from .errors import DatabaseError, NotFoundError
from .filters import SearchFilter
from .tables import MemoryFragment, MemoryTag, Meta, VectorOutbox

FRAGMENTS = MemoryFragment.__table__  # type: ignore[attr-defined]
TAGS = MemoryTag.__table__  # type: ignore[attr-defined]
OUTBOX = VectorOutbox.__table__  # type: ignore[attr-defined]
META = Meta.__table__  # type: ignore[attr-defined]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_CACHE_KIB = 32_768  # page cache per connection
SQLITE_MMAP_BYTES = 256 * 1024 * 1024

# Words too common to help a keyword match (the OR query would otherwise match everything).
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "did",
        "does",
        "what's",
        "i'm",
        "it's",
        "don't",
        # what is left of contractions and possessives once words are split on \w+
        "s",
        "t",
        "m",
        "d",
        "ll",
        "re",
        "ve",
    ]
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    memory_id: int
    op: str
    token: int
    attempts: int


class IdAllocator:
    """Millisecond-timestamp ids, strictly increasing within a process.

    Several writes in one millisecond take the next free milliseconds. Across processes a clash
    is caught by the primary key and the write retried with ids past the largest one stored.
    """

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def take(self, count: int = 1, floor: int = 0) -> list[int]:
        with self._lock:
            now_ms = int(self._clock() * 1000)
            start = max(now_ms, self._last + 1, floor)
            self._last = start + count - 1
            return list(range(start, start + count))


def _row_to_memory(row: Any) -> Memory:
    return Memory(
        id=int(row.id),
        content=row.content,
        created_at=int(row.created_at),
        source=row.source,
        importance=row.importance,
        confidence=row.confidence,
        tags=tuple(row.tags or ()),
        notes=row.notes,
        associations=tuple(int(a) for a in (row.associations or ())),
    )


def _is_mysql(engine: Engine | Connection) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def describe_url(url: str) -> str:
    """The database URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


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
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def make_sql_engine(url: str) -> Engine:
    """Create the SQLAlchemy engine: WAL + busy timeout on SQLite, pooled pymysql on MySQL."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError
        raise DatabaseError(f"invalid database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"database {describe_url(url)} unavailable: {exc.strerror or exc}: "
                    f"{Path(parsed.database).parent}"
                ) from None
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
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(f"{database}.migrate.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
        mysql = _is_mysql(engine)
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


class SqlStore:
    """All SQL the engine runs. Methods raise :class:`DatabaseError` with a one-line message."""

    def __init__(self, url: str, clock: Any = time.time) -> None:
        self.url = url
        self.clock = clock
        self.engine = make_sql_engine(url)
        self.is_mysql = _is_mysql(self.engine)
        self.ids = IdAllocator(clock)
        try:
            migrate(self.engine)
        except OperationalError as exc:
            raise DatabaseError(self._explain(exc)) from None
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot prepare database {describe_url(url)}: {exc}") from None

    def _explain(self, exc: Exception) -> str:
        detail = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"database {describe_url(self.url)} unavailable: {detail}"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (NotFoundError, DatabaseError):
            raise
        except OperationalError as exc:
            raise DatabaseError(self._explain(exc)) from None
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", exc)).splitlines()[0]
            raise DatabaseError(f"database error: {detail}") from None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite); commits or rolls back whole."""
        with (
            self._guard(),
            self.engine.connect().execution_options(ephemera_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writes

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _outbox_rows(self, items: Iterable[tuple[int, str, str | None]]) -> list[dict[str, Any]]:
        now = self._now_ms()
        return [
            {
                "memory_id": mid,
                "op": op,
                "content_hash": chash,
                "token": random.getrandbits(62),
                "enqueued_at": now,
                "not_before": 0,
                "attempts": 0,
                "last_error": None,
            }
            for mid, op, chash in items
        ]

    def _enqueue(self, conn: Connection, items: list[tuple[int, str, str | None]]) -> None:
        if not items:
            return
        conn.execute(delete(OUTBOX).where(OUTBOX.c.memory_id.in_([i[0] for i in items])))
        conn.execute(insert(OUTBOX), self._outbox_rows(items))

    def _fragment_row(self, mid: int, draft: Draft) -> dict[str, Any]:
        created = draft.created_at if draft.created_at is not None else int(self.clock())
        return {
            "id": mid,
            "content": draft.content,
            "created_at": created,
            "source": draft.source,
            "importance": draft.importance,
            "confidence": draft.confidence,
            "tags": list(draft.tags),
            "notes": draft.notes,
            "associations": list(draft.associations),
        }

    def _max_id(self, conn: Connection) -> int:
        return int(conn.execute(select(func.max(FRAGMENTS.c.id))).scalar() or 0)

    def insert(
        self, drafts: Sequence[Draft], ids: Sequence[int | None] | None = None
    ) -> list[Memory]:
        """Insert new memories (with tags and outbox rows) in one transaction; return them.

        ``ids`` may carry explicit ids (an import of an export); the rest get fresh ids.
        """
        if not drafts:
            return []
        explicit = list(ids) if ids is not None else [None] * len(drafts)
        floor = 0
        for attempt in range(20):
            fresh = iter(self.ids.take(sum(1 for i in explicit if i is None), floor=floor))
            rows = [
                self._fragment_row(mid if mid is not None else next(fresh), d)
                for mid, d in zip(explicit, drafts, strict=True)
            ]
            try:
                with self.write() as conn:
                    conn.execute(insert(FRAGMENTS), rows)
                    tag_rows = [{"memory_id": r["id"], "tag": t} for r in rows for t in r["tags"]]
                    if tag_rows:
                        conn.execute(insert(TAGS), tag_rows)
                    self._enqueue(
                        conn, [(r["id"], "upsert", content_hash(r["content"])) for r in rows]
                    )
                return [_row_to_memory(_Row(r)) for r in rows]
            except DatabaseError as exc:
                message = str(exc).upper()
                if "DEADLOCK" in message or "LOCK WAIT TIMEOUT" in message:
                    # InnoDB picked this transaction as a deadlock victim (concurrent writers
                    # take gap locks on the outbox): it was rolled back whole; run it again.
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                    continue
                if "UNIQUE" not in message and "DUPLICATE" not in message:
                    raise
                if any(i is not None for i in explicit):
                    raise
                # Another process took these milliseconds: retry past the largest id stored.
                with self.read() as conn:
                    floor = self._max_id(conn) + 1 + attempt
        raise DatabaseError("could not write the memories after 20 attempts (ids or locks in use)")

    def update(self, memory_id: int, draft: Draft) -> Memory:
        with self.write() as conn:
            found = conn.execute(select(FRAGMENTS.c.id).where(FRAGMENTS.c.id == memory_id)).first()
            if found is None:
                raise NotFoundError(f"no memory with id {memory_id}")
            row = self._fragment_row(memory_id, draft)
            conn.execute(update(FRAGMENTS).where(FRAGMENTS.c.id == memory_id).values(**row))
            conn.execute(delete(TAGS).where(TAGS.c.memory_id == memory_id))
            if row["tags"]:
                conn.execute(
                    insert(TAGS), [{"memory_id": memory_id, "tag": t} for t in row["tags"]]
                )
            self._enqueue(conn, [(memory_id, "upsert", content_hash(row["content"]))])
        return _row_to_memory(_Row(row))

    def delete(self, memory_id: int) -> Memory:
        """Delete a memory, its tags and every link pointing at it; queue the vector delete."""
        with self.write() as conn:
            row = conn.execute(select(FRAGMENTS).where(FRAGMENTS.c.id == memory_id)).first()
            if row is None:
                raise NotFoundError(f"no memory with id {memory_id}")
            memory = _row_to_memory(row)
            for other in self._linking(conn, memory_id):
                assoc = [a for a in (other.associations or []) if int(a) != memory_id]
                conn.execute(
                    update(FRAGMENTS).where(FRAGMENTS.c.id == other.id).values(associations=assoc)
                )
            conn.execute(delete(TAGS).where(TAGS.c.memory_id == memory_id))
            conn.execute(delete(FRAGMENTS).where(FRAGMENTS.c.id == memory_id))
            self._enqueue(conn, [(memory_id, "delete", None)])
        return memory

    def _linking(self, conn: Connection, memory_id: int) -> list[Any]:
        """Rows whose associations mention ``memory_id`` (JSON text search, then exact check)."""
        pattern = f"%{memory_id}%"
        rows = conn.execute(
            select(FRAGMENTS.c.id, FRAGMENTS.c.associations).where(
                func.cast(FRAGMENTS.c.associations, Text()).like(pattern)
            )
        ).all()
        return [r for r in rows if memory_id in {int(a) for a in (r.associations or [])}]

    def set_associations(self, memory_id: int, associations: Sequence[int]) -> Memory:
        """Replace one memory's links (metadata only: no re-embedding needed)."""
        with self.write() as conn:
            row = conn.execute(select(FRAGMENTS).where(FRAGMENTS.c.id == memory_id)).first()
            if row is None:
                raise NotFoundError(f"no memory with id {memory_id}")
            conn.execute(
                update(FRAGMENTS)
                .where(FRAGMENTS.c.id == memory_id)
                .values(associations=list(associations))
            )
        return replace(_row_to_memory(row), associations=tuple(associations))

    def requeue(self, ids: Sequence[int], op: str = "upsert") -> None:
        """Put memories back in the outbox (used by repair and re-embedding)."""
        for chunk in _chunks(list(ids), 500):
            with self.write() as conn:
                hashes = {}
                if op == "upsert":
                    hashes = {
                        int(r.id): content_hash(r.content)
                        for r in conn.execute(
                            select(FRAGMENTS.c.id, FRAGMENTS.c.content).where(
                                FRAGMENTS.c.id.in_(chunk)
                            )
                        )
                    }
                self._enqueue(conn, [(mid, op, hashes.get(mid)) for mid in chunk])

    # ------------------------------------------------------------------ outbox

    def due_outbox(self, limit: int) -> list[OutboxItem]:
        with self.read() as conn:
            rows = conn.execute(
                select(OUTBOX.c.memory_id, OUTBOX.c.op, OUTBOX.c.token, OUTBOX.c.attempts)
                .where(OUTBOX.c.not_before <= self._now_ms())
                .order_by(OUTBOX.c.memory_id)
                .limit(limit)
            ).all()
        return [OutboxItem(int(r.memory_id), r.op, int(r.token), int(r.attempts)) for r in rows]

    def outbox_for(self, ids: Sequence[int]) -> list[OutboxItem]:
        """Outbox rows of just these memories (to index a fresh write at once)."""
        out: list[OutboxItem] = []
        with self.read() as conn:
            for chunk in _chunks(list(ids), 500):
                rows = conn.execute(
                    select(
                        OUTBOX.c.memory_id, OUTBOX.c.op, OUTBOX.c.token, OUTBOX.c.attempts
                    ).where(OUTBOX.c.memory_id.in_(chunk))
                ).all()
                out.extend(OutboxItem(int(r[0]), r[1], int(r[2]), int(r[3])) for r in rows)
        return out

    def clear_outbox(self, items: Sequence[OutboxItem]) -> None:
        """Remove outbox rows that were handled, unless an edit re-queued them meanwhile."""
        if not items:
            return
        with self.write() as conn:
            for chunk in _chunks(list(items), 400):
                conn.execute(
                    delete(OUTBOX).where(
                        or_(
                            *[
                                and_(OUTBOX.c.memory_id == i.memory_id, OUTBOX.c.token == i.token)
                                for i in chunk
                            ]
                        )
                    )
                )

    def defer_outbox(self, items: Sequence[OutboxItem], error: str) -> None:
        """Record a failed attempt and back off (1 s doubling up to 5 min)."""
        now = self._now_ms()
        with self.write() as conn:
            for item in items:
                delay = min(300_000, 1000 * 2 ** min(item.attempts, 9))
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.memory_id == item.memory_id, OUTBOX.c.token == item.token)
                    .values(
                        attempts=item.attempts + 1, not_before=now + delay, last_error=error[:500]
                    )
                )

    def outbox_summary(self) -> dict[str, Any]:
        with self.read() as conn:
            row = conn.execute(
                select(func.count(), func.min(OUTBOX.c.enqueued_at), func.max(OUTBOX.c.attempts))
            ).one()
            error = conn.execute(
                select(OUTBOX.c.last_error)
                .where(OUTBOX.c.last_error.is_not(None))
                .order_by(OUTBOX.c.enqueued_at.desc())
                .limit(1)
            ).scalar()
        oldest = row[1]
        return {
            "pending": int(row[0] or 0),
            "oldest_age_s": None if oldest is None else max(0.0, (self._now_ms() - oldest) / 1000),
            "max_attempts": int(row[2] or 0),
            "last_error": error,
        }

    def pending_count(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(OUTBOX)).scalar() or 0)

    def pending_ids(self) -> set[int]:
        with self.read() as conn:
            return {int(r[0]) for r in conn.execute(select(OUTBOX.c.memory_id))}

    # ------------------------------------------------------------------ reads

    def get_many(self, ids: Sequence[int]) -> dict[int, Memory]:
        """Fetch memories by id in one query per 500 ids (the enrichment step)."""
        out: dict[int, Memory] = {}
        with self.read() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), 500):
                for row in conn.execute(select(FRAGMENTS).where(FRAGMENTS.c.id.in_(chunk))):
                    out[int(row.id)] = _row_to_memory(row)
        return out

    def get(self, memory_id: int) -> Memory:
        found = self.get_many([memory_id]).get(memory_id)
        if found is None:
            raise NotFoundError(f"no memory with id {memory_id}")
        return found

    def count(self, flt: SearchFilter | None = None) -> int:
        with self.read() as conn:
            query = select(func.count()).select_from(FRAGMENTS)
            conds = self.filter_conditions(flt) if flt else []
            if conds:
                query = query.where(*conds)
            return int(conn.execute(query).scalar() or 0)

    def filter_conditions(self, flt: SearchFilter) -> list[Any]:
        """SQL conditions for a filter (same meaning as the vector-side payload filter)."""
        c = FRAGMENTS.c
        conds: list[Any] = []
        if flt.after is not None:
            conds.append(c.created_at >= flt.after)
        if flt.before is not None:
            conds.append(c.created_at < flt.before)
        if flt.sources:
            conds.append(c.source.in_(list(flt.sources)))
        for name in ("importance", "confidence"):
            low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
            if low is not None:
                conds.append(getattr(c, name) >= low)
            if high is not None:
                conds.append(getattr(c, name) <= high)
        for tag in flt.tags:
            conds.append(exists().where(TAGS.c.memory_id == c.id, TAGS.c.tag == tag))
        for phrase in flt.phrases:
            conds.append(c.content.like(f"%{_escape_like(phrase)}%", escape="\\"))
        if flt.ids is not None:
            conds.append(c.id.in_(list(flt.ids)))
        if flt.exclude_ids:
            conds.append(c.id.not_in(list(flt.exclude_ids)))
        return conds

    def filter_ids(self, ids: Sequence[int], flt: SearchFilter) -> set[int]:
        """Which of ``ids`` pass the filter in SQL (vector hits are re-checked here)."""
        conds = self.filter_conditions(flt)
        if not conds:
            return set(ids)
        out: set[int] = set()
        with self.read() as conn:
            for chunk in _chunks(list(ids), 500):
                out.update(
                    int(r[0])
                    for r in conn.execute(
                        select(FRAGMENTS.c.id).where(FRAGMENTS.c.id.in_(chunk), *conds)
                    )
                )
        return out

    def keyword_search(
        self, terms: Sequence[str], flt: SearchFilter, limit: int, budget: int | None = None
    ) -> list[tuple[int, float]]:
        """Full-text search: FTS5 bm25 on SQLite, FULLTEXT relevance on MySQL; best first."""
        words = [t for t in terms if t]
        if not words:
            return []
        conds = self.filter_conditions(flt)
        with self.read() as conn:
            if self.is_mysql:
                return self._mysql_keyword(conn, words, conds, limit)
            return self._sqlite_keyword(conn, words, conds, limit, budget)

    def _sqlite_keyword(
        self,
        conn: Connection,
        words: list[str],
        conds: list[Any],
        limit: int,
        budget: int | None = None,
    ) -> list[tuple[int, float]]:
        # FTS5 scores every row that matches before it can sort, so the cost grows with the
        # postings of the query's words. Past ``budget`` postings the commonest words (whose
        # bm25 weight is small anyway) are left out; if even the rarest word is over budget,
        # its newest matches are scored instead of all of them.
        newest_only = False
        if budget:
            freqs = _doc_freqs(conn, words, str(self.engine.url))
            words, newest_only = _within_budget(words, freqs, budget)
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        fts = table("memory_fts", column("rowid"))
        rank: Any = literal_column("bm25(memory_fts)")
        query = select(fts.c.rowid.label("id"), rank.label("rank"))
        if conds:
            query = query.select_from(fts.join(FRAGMENTS, FRAGMENTS.c.id == fts.c.rowid))
        else:
            query = query.select_from(fts)
        query = query.where(text("memory_fts MATCH :match"), *conds)
        if newest_only:
            query = query.order_by(fts.c.rowid.desc()).limit(limit)
        else:
            query = query.order_by(rank).limit(limit)
        rows = conn.execute(query, {"match": match}).all()
        ranked = [(int(r.id), -float(r.rank)) for r in rows]
        if newest_only:
            ranked.sort(key=lambda item: -item[1])
        return ranked

    def _mysql_keyword(
        self, conn: Connection, words: list[str], conds: list[Any], limit: int
    ) -> list[tuple[int, float]]:
        # InnoDB FULLTEXT ignores words under 3 characters: those fall back to LIKE.
        long_words = [w for w in words if len(w) >= 3]
        short_words = [w for w in words if len(w) < 3]
        scores: dict[int, float] = {}
        if long_words:
            against = " ".join(long_words)
            relevance = mysql_match(FRAGMENTS.c.content, against=against)
            query = (
                select(FRAGMENTS.c.id, relevance.label("score"))
                .where(relevance > 0, *conds)
                .order_by(relevance.desc(), FRAGMENTS.c.id.desc())  # ties: newest first
                .limit(limit)
            )
            for row in conn.execute(query):
                scores[int(row.id)] = float(row.score)
        if short_words:
            likes = [
                FRAGMENTS.c.content.like(f"%{_escape_like(w)}%", escape="\\") for w in short_words
            ]
            query = (
                select(FRAGMENTS.c.id)
                .where(or_(*likes), *conds)
                .order_by(FRAGMENTS.c.id.desc())
                .limit(limit)
            )
            for row in conn.execute(query):
                scores[int(row.id)] = scores.get(int(row.id), 0.0) + 0.5
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        return ranked[:limit]

    def browse(
        self,
        flt: SearchFilter | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Memory]:
        """Memories in time order (the timeline, and search without words), one page at a time."""
        c = FRAGMENTS.c
        order = (c.created_at.desc(), c.id.desc()) if newest_first else (c.created_at, c.id)
        query = select(FRAGMENTS).order_by(*order).limit(limit).offset(offset)
        conds = self.filter_conditions(flt) if flt else []
        if conds:
            query = query.where(*conds)
        with self.read() as conn:
            return [_row_to_memory(r) for r in conn.execute(query)]

    def position_before(self, created_at: int, flt: SearchFilter | None = None) -> int:
        """How many memories are newer than ``created_at`` (jump-to-date in the timeline)."""
        c = FRAGMENTS.c
        conds = [c.created_at >= created_at] + (self.filter_conditions(flt) if flt else [])
        with self.read() as conn:
            return int(conn.execute(select(func.count()).where(*conds)).scalar() or 0)

    def activity_days(
        self, utc_offset: int, flt: SearchFilter | None = None
    ) -> list[tuple[int, int]]:
        """Counts per local day (``utc_offset`` seconds east of UTC): ``[(day start, n)]``."""
        c = FRAGMENTS.c
        local = c.created_at + utc_offset
        bucket = (local - (local % 86400) - utc_offset).label("bucket")
        query = select(bucket, func.count()).group_by(bucket).order_by(bucket)
        conds = self.filter_conditions(flt) if flt else []
        if conds:
            query = query.where(*conds)
        with self.read() as conn:
            return [(int(r[0]), int(r[1])) for r in conn.execute(query)]

    def tag_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        with self.read() as conn:
            rows = conn.execute(
                select(TAGS.c.tag, func.count().label("n"))
                .group_by(TAGS.c.tag)
                .order_by(text("n DESC"), TAGS.c.tag)
                .limit(limit)
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    def source_counts(self) -> list[tuple[str, int]]:
        with self.read() as conn:
            rows = conn.execute(
                select(FRAGMENTS.c.source, func.count().label("n"))
                .group_by(FRAGMENTS.c.source)
                .order_by(text("n DESC"))
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    def linked_to(self, memory_id: int) -> list[int]:
        """Ids of memories whose associations point at ``memory_id`` (the reverse links)."""
        with self.read() as conn:
            return [int(r.id) for r in self._linking(conn, memory_id)]

    def id_hashes(self, after_id: int, limit: int) -> list[tuple[int, str]]:
        """(id, content hash) in id order from ``after_id``: a slice for the cross-check."""
        with self.read() as conn:
            rows = conn.execute(
                select(FRAGMENTS.c.id, FRAGMENTS.c.content)
                .where(FRAGMENTS.c.id > after_id)
                .order_by(FRAGMENTS.c.id)
                .limit(limit)
            ).all()
        return [(int(r.id), content_hash(r.content)) for r in rows]

    def existing_ids(self, ids: Sequence[int]) -> set[int]:
        out: set[int] = set()
        with self.read() as conn:
            for chunk in _chunks(list(ids), 500):
                out.update(
                    int(r[0])
                    for r in conn.execute(select(FRAGMENTS.c.id).where(FRAGMENTS.c.id.in_(chunk)))
                )
        return out

    def find_duplicates(self, drafts: Sequence[Draft]) -> set[int]:
        """Indexes of drafts already stored (same content, created_at and source)."""
        stamps = {d.created_at for d in drafts if d.created_at is not None}
        if not stamps:
            return set()
        seen: set[tuple[str, int, str]] = set()
        with self.read() as conn:
            for chunk in _chunks(sorted(stamps), 500):
                for row in conn.execute(
                    select(FRAGMENTS.c.content, FRAGMENTS.c.created_at, FRAGMENTS.c.source).where(
                        FRAGMENTS.c.created_at.in_(chunk)
                    )
                ):
                    seen.add((row.content, int(row.created_at), row.source))
        return {
            i
            for i, d in enumerate(drafts)
            if d.created_at is not None and (d.content, d.created_at, d.source) in seen
        }

    def iter_all(self, batch: int = 1000) -> Iterator[Memory]:
        last = -1
        while True:
            with self.read() as conn:
                rows = conn.execute(
                    select(FRAGMENTS)
                    .where(FRAGMENTS.c.id > last)
                    .order_by(FRAGMENTS.c.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _row_to_memory(row)
            last = int(rows[-1].id)

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        with self.read() as conn:
            return conn.execute(select(META.c.value).where(META.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            conn.execute(delete(META).where(META.c.key == key))
            conn.execute(insert(META).values(key=key, value=value))

    def swap_meta(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: unset), in one
        transaction; False when another process changed it first."""
        with self.write() as conn:
            current = conn.execute(select(META.c.value).where(META.c.key == key)).scalar()
            if current != expected:
                return False
            conn.execute(delete(META).where(META.c.key == key))
            conn.execute(insert(META).values(key=key, value=value))
            return True


class _Row:
    """Attribute access over a dict, so fresh rows go through the same converter as fetched ones."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _stem_candidates(word: str) -> list[str]:
    """Forms the porter tokenizer may have stored ``word`` under, longest first (the word
    itself, its prefixes up to four letters shorter but not under two, and ``-y`` as ``-i``),
    for document-frequency look-ups: the longest one stored is taken (``going`` -> ``go``,
    ``cells`` -> ``cell``). Few and long, because FTS5 counts a term's documents by walking
    its postings."""
    out = [word] + [word[:k] for k in range(len(word) - 1, max(1, len(word) - 5), -1)]
    if word.endswith("y") and len(word) > 3:
        out.insert(1, word[:-1] + "i")
    return out


# Document frequencies by (database, stored form): (when looked up, count or -1 if absent).
# FTS5 counts a term's documents by walking its postings (~10 ms a query at 1M memories), and
# the counts only steer which words to leave out, so a few minutes' staleness is harmless.
_DF_CACHE: dict[tuple[str, str], tuple[float, int]] = {}
_DF_TTL_S = 300.0
_DF_CACHE_MAX = 100_000


def _doc_freqs(conn: Connection, words: Sequence[str], db: str = "") -> dict[str, int]:
    """How many memories hold each word (FTS5 vocabulary, cached); approximate for stems."""
    forms = {form: None for w in words for form in _stem_candidates(w)}
    if not forms:
        return {}
    now = time.monotonic()
    known: dict[str, int] = {}
    for form in forms:
        hit = _DF_CACHE.get((db, form))
        if hit is not None and now - hit[0] < _DF_TTL_S:
            known[form] = hit[1]
    todo = [f for f in forms if f not in known]
    if todo:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.memory_fts_vocab "
            "USING fts5vocab(main, memory_fts, row)"
        )
        marks = ",".join("?" * len(todo))
        found: dict[str, int] = dict(
            conn.exec_driver_sql(
                f"SELECT term, doc FROM temp.memory_fts_vocab WHERE term IN ({marks})",
                tuple(todo),
            ).all()
        )
        if len(_DF_CACHE) > _DF_CACHE_MAX:
            _DF_CACHE.clear()
        for form in todo:
            known[form] = int(found.get(form, -1))
            _DF_CACHE[(db, form)] = (now, known[form])
    return {
        w: next((known[f] for f in _stem_candidates(w) if known.get(f, -1) >= 0), 0) for w in words
    }


def _within_budget(words: list[str], freqs: dict[str, int], budget: int) -> tuple[list[str], bool]:
    """The rarest words whose postings fit ``budget`` (at least one), and whether even that
    one is over budget. Word order is kept."""
    kept: set[str] = set()
    total = 0
    for word in sorted(dict.fromkeys(words), key=lambda w: freqs.get(w, 0)):
        if kept and total + freqs.get(word, 0) > budget:
            break
        kept.add(word)
        total += freqs.get(word, 0)
    return [w for w in words if w in kept], total > budget


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
