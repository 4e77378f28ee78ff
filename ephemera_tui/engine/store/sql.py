"""The SQL store: memories and their tags, the vector outbox, meta keys, reads and paging.

SQL is the source of truth. Every write puts the fragment, its tags and an outbox row in one
transaction; the vector store is brought in step afterwards from the outbox. Connecting and
migrating live in :mod:`.connection`, keyword search in :mod:`.keyword`, filter conditions in
:mod:`.conditions`.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection, Text, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from ..domain import MEMORY_FIELDS, Change, Draft, Memory, content_hash
from ..errors import ConflictError, DatabaseError, NotFoundError
from ..filters import SearchFilter, fold_tag
from .conditions import filter_conditions, has_any_tag
from .connection import database_error, describe_url, is_mysql, make_sql_engine, migrate
from .keyword import sqlite_keyword
from .mysql_keyword import mysql_keyword
from .replicas import ReplicaSet, ReplicaState
from .tables import CHANGES, FRAGMENTS, LINKS, META, OUTBOX, TAGS, MemoryFragment, Meta

T = TypeVar("T")


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


def tag_rows(tags_of: Iterable[tuple[int, Sequence[str]]]) -> list[dict[str, Any]]:
    """Rows of ``memory_tags`` for (memory, its tags): each tag as written and folded."""
    return [
        {"memory_id": memory_id, "tag": tag, "folded": fold_tag(tag)}
        for memory_id, tags in tags_of
        for tag in tags
    ]


def _counted(conds: list[Any]) -> Any:
    """``SELECT count(*) FROM memory_fragments WHERE conds``."""
    query = select(func.count()).select_from(FRAGMENTS)
    return query.where(*conds) if conds else query


def _insert_links(conn: Connection, links: Iterable[tuple[int, Sequence[int]]]) -> int:
    """Rows of ``memory_links`` for (memory, its associations); how many were written."""
    rows = [
        {"memory_id": memory_id, "target_id": int(target)}
        for memory_id, targets in links
        for target in dict.fromkeys(int(t) for t in targets)
    ]
    for chunk in _chunks(rows, 1000):
        conn.execute(insert(LINKS), chunk)
    return len(rows)


def _replace_links(conn: Connection, memory_id: int, targets: Sequence[int]) -> None:
    """One memory's links, as its associations now say."""
    conn.execute(delete(LINKS).where(LINKS.c.memory_id == memory_id))
    _insert_links(conn, [(memory_id, targets)])


def _json_list(raw: str | None) -> list[Any] | None:
    """A JSON list column read as text (most are empty: no decoder for those)."""
    return json.loads(raw) if raw and raw != "[]" else None


# The columns plain-SQL reads select: a memory's fields in the order ``Memory`` declares them,
# which is how :func:`_memory_from_columns` unpacks them.
_MEMORY_COLUMNS = (*MEMORY_FIELDS, "revision")


def _memory_from_columns(row: Sequence[Any]) -> Memory:
    """A memory from a plain-SQL row of :data:`_MEMORY_COLUMNS` (JSON columns as text),
    unpacked by position: the enrichment of every search reads 20 of these."""
    mid, content, created_at, source, importance, confidence, tags, notes, links, rev = row
    return Memory(
        int(mid),
        content,
        int(created_at),
        source,
        importance,
        confidence,
        tuple(_json_list(tags) or ()),
        notes,
        tuple(int(a) for a in _json_list(links) or ()),
        int(rev or 1),
    )


def _row_to_memory(row: Any) -> Memory:
    """A memory from a table row (a Core or model row, JSON columns decoded)."""
    tags, associations = row.tags, row.associations
    return Memory(
        id=int(row.id),
        content=row.content,
        created_at=int(row.created_at),
        source=row.source,
        importance=row.importance,
        confidence=row.confidence,
        tags=tuple(tags or ()),
        notes=row.notes,
        associations=tuple(int(a) for a in (associations or ())),
        revision=int(getattr(row, "revision", 1) or 1),
    )


class SqlStore:
    """All SQL the engine runs. Methods raise :class:`DatabaseError` with a one-line message.

    ``read_urls`` are read replicas of a MySQL/MariaDB primary (see :mod:`.replicas`): the
    reads of search, browse, the timeline and reports go there while one is usable and has
    applied this process's writes; everything else reads and writes the primary.
    """

    def __init__(
        self,
        url: str,
        clock: Any = time.time,
        *,
        read_urls: Sequence[str] = (),
        replica_max_lag_s: float = 5.0,
    ) -> None:
        self.url = url
        self.clock = clock
        self.engine = make_sql_engine(url)
        self.is_mysql = is_mysql(self.engine)
        self._by_ids: dict[int, str] = {}
        self.ids = IdAllocator(clock)
        self.replicas: ReplicaSet | None = None
        try:
            migrate(self.engine)
        except OperationalError as exc:
            raise database_error(exc, url) from exc
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot prepare database {describe_url(url)}: {exc}") from exc
        if read_urls:
            self.use_replicas(read_urls, replica_max_lag_s)

    def use_replicas(self, urls: Sequence[str], max_lag_s: float = 5.0) -> None:
        """Send replica-safe reads to these MySQL/MariaDB replicas (none: all to the primary).

        Replaces any replicas set before. The primary's GTID position now is the first one
        a replica must have applied before it reads for this process."""
        if urls and not self.is_mysql:
            raise DatabaseError(
                "read replicas need a MySQL/MariaDB primary; database_url is "
                f"{describe_url(self.url)}"
            )
        old, self.replicas = self.replicas, None
        if old is not None:
            old.close()
        if urls:
            with self._guard():
                self.replicas = ReplicaSet(urls, self.engine, max_lag_s=max_lag_s)

    def replica_states(self) -> list[ReplicaState]:
        """Each read replica's state: status, lag, notice, reads served and skipped."""
        return [] if self.replicas is None else self.replicas.states()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (NotFoundError, DatabaseError):
            raise
        except SQLAlchemyError as exc:
            raise database_error(exc, self.url) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite); commits or rolls back whole."""
        with (
            self._guard(),
            self.engine.connect().execution_options(ephemera_write=True) as conn,
        ):
            with conn.begin():
                yield conn
            if self.replicas is not None:
                self.replicas.wrote(conn)  # reads wait for the replicas to apply this

    @contextmanager
    def read(self, *, replica_ok: bool = False) -> Iterator[Connection]:
        """A connection for reads: the primary, or with ``replica_ok`` a read replica that
        is usable and has applied this process's writes (the primary when none is).

        A replica that cannot be reached is skipped before the block runs; one that fails
        while it runs is not retried here (the store's own replica reads go through
        :meth:`_routed`, which then answers from the primary)."""
        if replica_ok and self.replicas is not None:
            with self.replicas.connect() as found:
                if found is not None:
                    with self._guard():
                        yield found[0]
                    return
        with self._guard(), self.engine.connect() as conn:
            yield conn

    def _routed(self, query: Callable[[Connection], T], replica_ok: bool = True) -> T:
        """Run ``query`` on a usable replica when allowed, else (or when it fails there)
        on the primary: a replica's trouble is never the caller's error."""
        if replica_ok and self.replicas is not None:
            done, result = self.replicas.run(query)
            if done:
                return result  # type: ignore[no-any-return]
        with self.read() as conn:
            return query(conn)

    def close(self) -> None:
        if self.replicas is not None:
            self.replicas.close()
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
                    tagged = tag_rows((r["id"], r["tags"]) for r in rows)
                    if tagged:
                        conn.execute(insert(TAGS), tagged)
                    _insert_links(conn, [(r["id"], r["associations"]) for r in rows])
                    self._enqueue(
                        conn, [(r["id"], "upsert", content_hash(r["content"])) for r in rows]
                    )
                    self._record(conn, [(r["id"], "add", 1) for r in rows])
                return [_row_to_memory(_Row(r)) for r in rows]
            except DatabaseError as exc:
                if exc.retryable:
                    # InnoDB picked this transaction as a deadlock victim (concurrent writers
                    # take gap locks on the outbox): it was rolled back whole; run it again.
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
                    continue
                if not exc.duplicate_key:
                    if self._landed(rows):
                        # the connection dropped during COMMIT, after the server committed
                        return [_row_to_memory(_Row(r)) for r in rows]
                    raise
                if any(i is not None for i in explicit):
                    raise
                # Another process took these milliseconds: retry past the largest id stored.
                with self.read() as conn:
                    floor = self._max_id(conn) + 1 + attempt
        raise DatabaseError("could not write the memories after 20 attempts (ids or locks in use)")

    def _landed(self, rows: list[dict[str, Any]]) -> bool:
        """After a write failed without a verdict (a connection lost during COMMIT): whether
        every row is stored as written, asked on a new connection. False if that cannot be
        told either (the error then stands)."""
        try:
            stored = self.get_many([r["id"] for r in rows])
        except DatabaseError:
            return False
        return all(r["id"] in stored and stored[r["id"]].content == r["content"] for r in rows)

    def update(self, memory_id: int, draft: Draft, expected_revision: int | None = None) -> Memory:
        """Replace a memory's fields. With ``expected_revision`` (the revision the edit
        started from), refuse with :class:`ConflictError` if someone changed it since."""
        with self.write() as conn:
            current = self._current(conn, memory_id, expected_revision, "edit")
            row = self._fragment_row(memory_id, draft)
            row["revision"] = current.revision + 1
            conn.execute(update(FRAGMENTS).where(FRAGMENTS.c.id == memory_id).values(**row))
            conn.execute(delete(TAGS).where(TAGS.c.memory_id == memory_id))
            if row["tags"]:
                conn.execute(insert(TAGS), tag_rows([(memory_id, row["tags"])]))
            _replace_links(conn, memory_id, row["associations"])
            self._enqueue(conn, [(memory_id, "upsert", content_hash(row["content"]))])
            self._record(conn, [(memory_id, "update", row["revision"])])
        return _row_to_memory(_Row(row))

    def _current(
        self, conn: Connection, memory_id: int, expected: int | None, doing: str
    ) -> Memory:
        """The memory as stored, locked for this transaction; NotFoundError if it is gone,
        ConflictError if ``expected`` is given and is not its revision."""
        query = select(FRAGMENTS).where(FRAGMENTS.c.id == memory_id)
        if self.is_mysql:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no memory with id {memory_id}")
        memory = _row_to_memory(row)
        if expected is not None and memory.revision != expected:
            raise ConflictError(
                f"memory {memory_id} was changed elsewhere (revision {memory.revision}, your "
                f"{doing} started from {expected}); nothing was saved",
                memory,
            )
        return memory

    def _record(
        self, conn: Connection, changes: Sequence[tuple[int | None, str, int | None]]
    ) -> None:
        """Append to the change feed, in the caller's transaction."""
        if changes:
            now = self._now_ms()
            conn.execute(
                insert(CHANGES),
                [{"memory_id": m, "op": op, "revision": r, "at": now} for m, op, r in changes],
            )

    def record_change(self, op: str, memory_id: int | None = None) -> None:
        """Record a journal-wide change (a restore, a re-embed switch) in the feed."""
        with self.write() as conn:
            self._record(conn, [(memory_id, op, None)])

    def changes(self, after_seq: int, limit: int = 500) -> list[Change]:
        """Feed entries with a sequence number above ``after_seq``, oldest first."""
        with self.read() as conn:
            rows = conn.execute(
                select(CHANGES)
                .where(CHANGES.c.seq > after_seq)
                .order_by(CHANGES.c.seq)
                .limit(limit)
            ).all()
        return [
            Change(
                int(r.seq),
                None if r.memory_id is None else int(r.memory_id),
                r.op,
                None if r.revision is None else int(r.revision),
                int(r.at),
            )
            for r in rows
        ]

    def latest_seq(self) -> int:
        """The newest sequence number of the change feed (0 before the first write): one
        indexed read, cheap enough to poll."""
        with self.read() as conn:
            return int(conn.execute(select(func.max(CHANGES.c.seq))).scalar() or 0)

    def delete(self, memory_id: int, expected_revision: int | None = None) -> Memory:
        """Delete a memory, its tags and every link pointing at it; queue the vector delete.
        With ``expected_revision``, refuse (ConflictError) if it changed since."""
        with self.write() as conn:
            memory = self._current(conn, memory_id, expected_revision, "delete")
            changed: list[tuple[int | None, str, int | None]] = []
            for other in self._linking(conn, memory_id):
                assoc = [a for a in (other.associations or []) if int(a) != memory_id]
                conn.execute(
                    update(FRAGMENTS)
                    .where(FRAGMENTS.c.id == other.id)
                    .values(associations=assoc, revision=FRAGMENTS.c.revision + 1)
                )
                changed.append((int(other.id), "link", None))
            links = LINKS.c
            conn.execute(
                delete(LINKS).where(or_(links.memory_id == memory_id, links.target_id == memory_id))
            )
            conn.execute(delete(TAGS).where(TAGS.c.memory_id == memory_id))
            conn.execute(delete(FRAGMENTS).where(FRAGMENTS.c.id == memory_id))
            self._enqueue(conn, [(memory_id, "delete", None)])
            self._record(conn, [(memory_id, "delete", memory.revision + 1), *changed])
        return memory

    def _linking(self, conn: Connection, memory_id: int) -> list[Any]:
        """Rows (id, associations) of the memories that link to ``memory_id``, found through
        ``memory_links`` by index, in id order."""
        links = LINKS.c
        return list(
            conn.execute(
                select(FRAGMENTS.c.id, FRAGMENTS.c.associations)
                .join(LINKS, links.memory_id == FRAGMENTS.c.id)
                .where(links.target_id == memory_id)
                .order_by(FRAGMENTS.c.id)
            )
        )

    def rebuild_links(self, conn: Connection | None = None) -> int:
        """Fill ``memory_links`` again from every memory's associations (after a restore or a
        binlog replay, which write ``memory_fragments`` alone); how many links there are."""
        if conn is None:
            with self.write() as own:
                return self.rebuild_links(own)
        conn.execute(delete(LINKS))
        text_form = func.cast(FRAGMENTS.c.associations, Text())
        rows = conn.execute(
            select(FRAGMENTS.c.id, FRAGMENTS.c.associations).where(
                FRAGMENTS.c.associations.is_not(None), text_form.not_in(["[]", "null"])
            )
        ).all()
        return _insert_links(conn, [(int(r.id), r.associations or []) for r in rows])

    def set_associations(self, memory_id: int, associations: Sequence[int]) -> Memory:
        """Replace one memory's links (metadata only: no re-embedding needed)."""
        with self.write() as conn:
            current = self._current(conn, memory_id, None, "link")
            conn.execute(
                update(FRAGMENTS)
                .where(FRAGMENTS.c.id == memory_id)
                .values(associations=list(associations), revision=current.revision + 1)
            )
            _replace_links(conn, memory_id, associations)
            self._record(conn, [(memory_id, "link", current.revision + 1)])
        return replace(current, associations=tuple(associations), revision=current.revision + 1)

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

    def due_outbox(self, limit: int, part: tuple[int, int] | None = None) -> list[OutboxItem]:
        """Outbox rows due now, in id order. ``part`` ``(k, n)``: only those of slice ``k``
        of ``n`` (``memory_id % n == k``), the rows one sliced worker drains."""
        query = (
            select(OUTBOX.c.memory_id, OUTBOX.c.op, OUTBOX.c.token, OUTBOX.c.attempts)
            .where(OUTBOX.c.not_before <= self._now_ms())
            .order_by(OUTBOX.c.memory_id)
            .limit(limit)
        )
        if part is not None:
            query = query.where(OUTBOX.c.memory_id % part[1] == part[0])
        with self.read() as conn:
            rows = conn.execute(query).all()
        return [OutboxItem(int(r.memory_id), r.op, int(r.token), int(r.attempts)) for r in rows]

    def due_outbox_slices(self, slices: int) -> dict[int, int]:
        """Rows due now per outbox slice (``memory_id % slices``): one grouped read."""
        part = (OUTBOX.c.memory_id % slices).label("part")
        query = (
            select(part, func.count()).where(OUTBOX.c.not_before <= self._now_ms()).group_by(part)
        )
        with self.read() as conn:
            return {int(r[0]): int(r[1]) for r in conn.execute(query)}

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

    def get_many(self, ids: Sequence[int], *, replica_ok: bool = False) -> dict[int, Memory]:
        """Fetch memories by id in one query per 500 ids (the enrichment step). With
        ``replica_ok`` (search results) a read replica may answer; the outbox, imports and
        edits read the primary."""
        # Plain SQL text on the driver, not a Core select: this runs on every search, and
        # building and caching a select cost five times the query itself (0.15 ms against
        # 0.01 for 20 rows); the two JSON columns are decoded here instead.
        out: dict[int, Memory] = {}
        with self.read(replica_ok=replica_ok) as conn:
            for chunk in _chunks(list(dict.fromkeys(ids)), 500):
                rows = conn.exec_driver_sql(self._by_ids_sql(len(chunk)), tuple(chunk)).all()
                for row in rows:
                    memory = _memory_from_columns(row)
                    out[memory.id] = memory
        return out

    def _by_ids_sql(self, count: int) -> str:
        """``SELECT <every column> FROM memory_fragments WHERE id IN (?, ...)`` for ``count``
        ids, in the driver's own placeholder style (cached by count)."""
        found = self._by_ids.get(count)
        if found is None:
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            columns = ", ".join(_MEMORY_COLUMNS)
            marks = ", ".join([mark] * count)
            found = f"SELECT {columns} FROM {FRAGMENTS.name} WHERE id IN ({marks})"
            self._by_ids[count] = found
        return found

    def get(self, memory_id: int) -> Memory:
        """One memory by id, through its model (from the primary)."""
        with self.read() as conn, Session(bind=conn) as session:
            row = session.exec(
                sm_select(MemoryFragment).where(col(MemoryFragment.id) == memory_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no memory with id {memory_id}")
        return _row_to_memory(row)

    def count(self, flt: SearchFilter | None = None, *, replica_ok: bool = False) -> int:
        """Memories matching ``flt`` (all without one); ``replica_ok`` for the browse views'
        totals (a restore's emptiness check and backups read the primary)."""
        return self._routed(lambda conn: self._count_where(conn, [], flt), replica_ok)

    def _split_excluded(self, flt: SearchFilter | None) -> tuple[list[Any], list[Any] | None]:
        """Conditions for a count over ``flt``: with ``-tag:x``, the rest of the filter and
        the rest plus "carries one of the excluded tags", to subtract (None otherwise).

        Memories without the tags = all that match the rest, less those with one of them:
        two index counts, where NOT IN reads every matching row (100 ms at 100k memories for
        -tag:x beside importance>=x)."""
        if flt is None:
            return [], None
        if not flt.exclude_tags:
            return self.filter_conditions(flt, whole_set=True), None
        rest = self.filter_conditions(replace(flt, exclude_tags=()), whole_set=True)
        return rest, [*rest, has_any_tag(flt.exclude_tags)]

    def _count_where(self, conn: Connection, extra: list[Any], flt: SearchFilter | None) -> int:
        rest, tagged = self._split_excluded(flt)
        query = _counted([*extra, *rest])
        if tagged is not None:
            query = select(query.scalar_subquery() - _counted([*extra, *tagged]).scalar_subquery())
        return int(conn.execute(query).scalar() or 0)

    def filter_conditions(self, flt: SearchFilter, *, whole_set: bool = False) -> list[Any]:
        """SQL conditions for a filter (see :func:`.conditions.filter_conditions`);
        ``whole_set`` for counts over every match."""
        return filter_conditions(flt, whole_set=whole_set)

    def filter_ids(self, ids: Sequence[int], flt: SearchFilter) -> set[int]:
        """Which of ``ids`` pass the filter in SQL (vector hits are re-checked here)."""
        conds = self.filter_conditions(flt)
        if not conds:
            return set(ids)

        def query(conn: Connection) -> set[int]:
            out: set[int] = set()
            for chunk in _chunks(list(ids), 500):
                out.update(
                    int(r[0])
                    for r in conn.execute(
                        select(FRAGMENTS.c.id).where(FRAGMENTS.c.id.in_(chunk), *conds)
                    )
                )
            return out

        return self._routed(query)

    def keyword_search(
        self, terms: Sequence[str], flt: SearchFilter, limit: int, budget: int | None = None
    ) -> list[tuple[int, float]]:
        """Full-text search: FTS5 bm25 on SQLite, FULLTEXT relevance on MySQL; best first."""
        words = [t for t in terms if t]
        if not words:
            return []
        conds = self.filter_conditions(flt)
        if self.is_mysql:
            db = str(self.engine.url)
            return self._routed(lambda conn: mysql_keyword(conn, words, conds, limit, budget, db))
        with self.read() as conn:
            return sqlite_keyword(conn, words, conds, limit, budget, str(self.engine.url))

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
        return self._routed(lambda conn: [_row_to_memory(r) for r in conn.execute(query)])

    def position_before(self, created_at: int, flt: SearchFilter | None = None) -> int:
        """How many memories are newer than ``created_at`` (jump-to-date in the timeline)."""
        newer = [FRAGMENTS.c.created_at >= created_at]
        return self._routed(lambda conn: self._count_where(conn, newer, flt))

    def activity_days(
        self, utc_offset: int, flt: SearchFilter | None = None
    ) -> list[tuple[int, int]]:
        """Counts per local day (``utc_offset`` seconds east of UTC): ``[(day start, n)]``."""
        c = FRAGMENTS.c
        local = c.created_at + utc_offset
        bucket = (local - (local % 86400) - utc_offset).label("bucket")
        rest, tagged = self._split_excluded(flt)

        def per_day(conn: Connection, conds: list[Any]) -> dict[int, int]:
            query = select(bucket, func.count()).group_by(bucket)
            rows = conn.execute(query.where(*conds) if conds else query)
            return {int(r[0]): int(r[1]) for r in rows}

        def read(conn: Connection) -> list[tuple[int, int]]:
            days = per_day(conn, rest)
            if tagged is not None:  # as in count(): all days less the excluded tags' days
                for day, n in per_day(conn, tagged).items():
                    days[day] = days.get(day, 0) - n  # one snapshot: never below zero
            return sorted((day, n) for day, n in days.items() if n > 0)

        return self._routed(read)

    def tag_counts(self, limit: int = 1000) -> list[tuple[str, int]]:
        query = (
            select(TAGS.c.tag, func.count().label("n"))
            .group_by(TAGS.c.tag)
            .order_by(text("n DESC"), TAGS.c.tag)
            .limit(limit)
        )
        return self._routed(lambda conn: [(r[0], int(r[1])) for r in conn.execute(query)])

    def source_counts(self) -> list[tuple[str, int]]:
        query = (
            select(FRAGMENTS.c.source, func.count().label("n"))
            .group_by(FRAGMENTS.c.source)
            .order_by(text("n DESC"))
        )
        return self._routed(lambda conn: [(r[0], int(r[1])) for r in conn.execute(query)])

    def linked_to(self, memory_id: int) -> list[int]:
        """Ids of memories whose associations point at ``memory_id`` (the reverse links)."""
        with self.read() as conn:
            return [int(r.id) for r in self._linking(conn, memory_id)]

    def nth_id_after(self, after_id: int, n: int) -> int | None:
        """The ``n``-th memory id after ``after_id`` in id order (None: fewer are left): where
        a cross-check range of ``n`` memories ends (reads the primary key only)."""
        with self.read() as conn:
            found = conn.execute(
                select(FRAGMENTS.c.id)
                .where(FRAGMENTS.c.id > after_id)
                .order_by(FRAGMENTS.c.id)
                .limit(1)
                .offset(max(0, n - 1))
            ).scalar()
        return None if found is None else int(found)

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
        """A meta value (see :class:`~.meta.MetaKey`), or None when unset."""
        with self.read() as conn, Session(bind=conn) as session:
            row = session.get(Meta, key)
            return None if row is None else row.value

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value; writes nothing when it already holds ``value`` (idle upkeep
        re-stamps the same values, and an idle app must not write)."""
        if self.get_meta(key) == value:
            return
        with self.write() as conn, Session(bind=conn) as session:
            session.merge(Meta(key=key, value=value))
            session.flush()

    def swap_meta(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: unset), in one
        transaction; False when another process changed it first."""
        with self.write() as conn, Session(bind=conn) as session:
            row = session.get(Meta, key, with_for_update=self.is_mysql)
            if (None if row is None else row.value) != expected:
                return False
            session.merge(Meta(key=key, value=value))
            session.flush()
            return True

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every meta key starting with ``prefix``, with its value (claims, slice leases)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.read() as conn:
            rows = conn.execute(
                select(META.c.key, META.c.value).where(META.c.key.like(escaped + "%", escape="\\"))
            ).all()
        return {str(r[0]): str(r[1]) for r in rows}

    def delete_meta(self, key: str, expected: str) -> bool:
        """Remove ``key`` only if it still holds ``expected``; False when it changed."""
        with self.write() as conn:
            done = conn.execute(delete(META).where(META.c.key == key, META.c.value == expected))
            return bool(done.rowcount == 1)

    def increment_meta(self, key: str, amount: int) -> None:
        """Add ``amount`` to a counter kept in meta, in one locked transaction (several
        workers count into the same keys). Nothing is written for 0."""
        if not amount:
            return
        for attempt in range(10):
            try:
                with self.write() as conn:
                    query = select(META.c.value).where(META.c.key == key)
                    if self.is_mysql:
                        query = query.with_for_update()
                    current = conn.execute(query).scalar()
                    try:
                        value = int(current or 0) + amount
                    except ValueError:
                        value = amount
                    conn.execute(delete(META).where(META.c.key == key))
                    conn.execute(insert(META).values(key=key, value=str(value)))
                return
            except DatabaseError as exc:
                # two first increments at once (InnoDB): the loser's insert collides or it
                # is picked as the deadlock victim; it was rolled back whole
                if not (exc.duplicate_key or exc.retryable) or attempt == 9:
                    raise
                time.sleep(random.uniform(0.005, 0.05))

    def claim_range(
        self, cursor_key: str, expected: str | None, cursor: str, claim_key: str, claim: str
    ) -> bool:
        """Move ``cursor_key`` from ``expected`` to ``cursor`` and record the claim row
        ``claim_key = claim``, in one transaction; False (nothing written) when another
        process moved the cursor first."""
        with self.write() as conn:
            query = select(META.c.value).where(META.c.key == cursor_key)
            if self.is_mysql:
                query = query.with_for_update()
            if conn.execute(query).scalar() != expected:
                return False
            conn.execute(delete(META).where(META.c.key.in_([cursor_key, claim_key])))
            conn.execute(
                insert(META),
                [{"key": cursor_key, "value": cursor}, {"key": claim_key, "value": claim}],
            )
            return True


class _Row:
    """Attribute access over a dict, so fresh rows go through the same converter as fetched ones."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
