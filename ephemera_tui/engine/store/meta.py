"""Meta keys and leases: every key the engine keeps in ``ephemera_meta``, in one registry, and
the lease that lets several workers on one database take turns.

A stamp is written only when its value changes, and a lease is renewed only when it is about
to expire, so an idle process writes nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import DatabaseError
from .tables import META

if TYPE_CHECKING:
    from .sql import SqlStore


class MetaKey(StrEnum):
    """Every key of ``ephemera_meta`` the engine reads or writes (the migration package keeps
    its own ``meili.*`` keys in :mod:`ephemera_tui.migration.state`)."""

    VECTOR_MODEL = "vector_model"
    """The embedding model that made the active collection's vectors."""
    VECTOR_COLLECTION = "vector_collection"
    """The active vector collection (unset: the default name); switched by re-embed/index."""
    VECTOR_COLLECTION_RETIRED = "vector_collection_retired"
    """JSON list of collections a switch left behind, dropped once nobody holds them."""
    REEMBED_TARGET = "reembed_target"
    """JSON state of a re-embed in progress (target collection, model)."""
    REEMBED_LAST_ID = "reembed_last_id"
    """The last memory id a re-embed has written (where an interrupted run resumes)."""
    INDEX_BUILD = "index_build"
    """The collection a background HNSW build is writing (for cleanup after a crash)."""
    INDEX_BUILD_LAST = "index_build_last"
    """JSON outcome of the last background HNSW build."""
    WORKER_LEASE = "worker_lease"
    """``owner|expires_ms`` of the worker allowed to run upkeep now (with ``worker_slices``
    above 1: the upkeep that is not sliced, i.e. backups, index builds, retired drops)."""
    OUTBOX_SLICE_LEASE = "worker_lease:outbox:"
    """Prefix of the per-slice outbox leases, ``worker_lease:outbox:<k>`` = ``owner|expires``:
    the worker allowed to drain the outbox rows with ``memory_id % worker_slices == k``."""
    CHECK_CLAIM = "check_claim:"
    """Prefix of cross-check range claims, ``check_claim:<after>:<upto or end>`` =
    ``owner|expires``: a worker checking ids ``(after, upto]``; an expired one is taken
    over. With claims the ``check_cursor`` is the next unclaimed id (``-2``: all claimed)."""
    WORKER_LAST_RUN = "worker_last_run"
    """JSON summary of the last upkeep run that did something."""
    CHECK_CURSOR = "check_cursor"
    """The last memory id the rolling cross-check reached (-1: start over)."""
    LAST_CHECK = "last_check"
    """Unix seconds of the last ``ephemera check``."""
    LAST_SLICE_CHECK = "last_slice_check"
    """Unix seconds of the last cross-check slice that found something."""
    LAST_FULL_CHECK = "last_full_check"
    """Unix seconds of the last complete cross-check pass."""
    MISMATCHES_FOUND = "mismatches_found"
    """Running count of cross-check problems found."""
    MISMATCHES_REPAIRED = "mismatches_repaired"
    """Running count of cross-check problems repaired."""
    LAST_BACKUP = "last_backup"
    """JSON record of the last backup set written."""
    LAST_BACKUP_ERROR = "last_backup_error"
    """JSON record of the last scheduled backup that failed."""


def default_owner() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A named lease in ``ephemera_meta``: ``owner|expires_ms``, taken by compare-and-swap.

    Claiming reads the row, and if it is free, expired or already ours, swaps it with a
    conditional ``UPDATE ... WHERE value = <what was read>``; exactly one contender's UPDATE
    matches. A missing row is created with INSERT, and a duplicate-key error means we lost.
    While we hold it with more than half its time left, :meth:`claim` writes nothing.
    """

    def __init__(
        self,
        store: SqlStore,
        clock: Callable[[], float],
        key: str = MetaKey.WORKER_LEASE,
        seconds: float = 60.0,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.key = key
        self.seconds = seconds
        self.owner = owner or default_owner()
        self._held_until_ms = 0  # our own lease's expiry, as last written by us

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @staticmethod
    def parse(value: str | None) -> tuple[str, int] | None:
        """(owner, expiry ms) from a stored value, or None when it is not a lease."""
        if not value or "|" not in value:
            return None
        owner, _, expires = value.rpartition("|")
        try:
            return owner, int(expires)
        except ValueError:
            return None

    def holder(self) -> tuple[str, int] | None:
        """(owner, expiry in ms) of the current lease, or None when there is none."""
        return self.parse(self.store.get_meta(self.key))

    @property
    def held(self) -> bool:
        """Whether this process holds the lease now (by its own record; no SQL)."""
        return self._held_until_ms > self._now_ms()

    def claim(self) -> bool:
        """Take or renew the lease; False if another live owner holds it."""
        now = self._now_ms()
        if self._held_until_ms - now > self.seconds * 500:
            return True  # ours for more than half its time: nothing to write
        expires = now + int(self.seconds * 1000)
        new_value = f"{self.owner}|{expires}"
        try:
            with self.store.write() as conn:
                current = conn.execute(select(META.c.value).where(META.c.key == self.key)).scalar()
                if current is None:
                    conn.execute(insert(META).values(key=self.key, value=new_value))
                    self._held_until_ms = expires
                    return True
                parsed = self.parse(current)
                if parsed is not None and parsed[0] != self.owner and parsed[1] > now:
                    self._held_until_ms = 0
                    return False
                result = conn.execute(
                    update(META)
                    .where(META.c.key == self.key, META.c.value == current)
                    .values(value=new_value)
                )
                won = bool(result.rowcount == 1)
        except DatabaseError as exc:
            if exc.duplicate_key:
                return False
            raise
        except IntegrityError:
            return False
        self._held_until_ms = expires if won else 0
        return won

    def adopt(self, expires_ms: int) -> None:
        """Count a lease row written in our name elsewhere (a claim recorded in the same
        transaction as another change, see ``SqlStore.claim_range``) as held until then."""
        self._held_until_ms = expires_ms

    def drop(self) -> None:
        """Remove the lease row if it is still ours: a finished claim leaves nothing behind."""
        self._held_until_ms = 0
        current = self.store.get_meta(self.key)
        parsed = self.parse(current)
        if current is not None and parsed is not None and parsed[0] == self.owner:
            self.store.delete_meta(self.key, current)

    def release(self) -> None:
        """Give the lease up early (only if it is still ours; no SQL if we never held it)."""
        if self._held_until_ms == 0:
            return
        self._held_until_ms = 0
        with self.store.write() as conn:
            current = conn.execute(select(META.c.value).where(META.c.key == self.key)).scalar()
            parsed = self.parse(current)
            if parsed is not None and parsed[0] == self.owner:
                conn.execute(
                    update(META)
                    .where(META.c.key == self.key, META.c.value == current)
                    .values(value=f"{self.owner}|0")
                )
