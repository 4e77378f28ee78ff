"""The journal protocol: the calls the app and the command line make on a journal.

:class:`~.core.Engine` implements it in-process; the resident engine's client
(:class:`ephemera_tui.service.client.ServiceClient`) implements it over a local socket. Every
call takes and returns plain frozen domain objects (:mod:`.domain`), never ORM rows or dicts,
so both sides are interchangeable for the code above them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from .domain import (
    Change,
    CheckReport,
    Draft,
    EngineStats,
    Hit,
    ImportReport,
    Memory,
    SearchResult,
    SyncReport,
)
from .filters import SearchFilter


@runtime_checkable
class Journal(Protocol):
    """A journal of memories: write, read, search, browse and follow its changes."""

    @property
    def vector_status(self) -> str:
        """``ok`` while search by meaning works, else why not (one line)."""
        ...

    # writes
    def add(self, draft: Draft) -> Memory:
        """Record a memory (SQL first; its vector follows)."""
        ...

    def update(
        self, memory_id: int, draft: Draft, *, expected_revision: int | None = None
    ) -> Memory:
        """Replace a memory's fields; a stale ``expected_revision`` raises ConflictError."""
        ...

    def delete(self, memory_id: int, *, expected_revision: int | None = None) -> Memory:
        """Delete a memory and the links pointing at it."""
        ...

    def link(self, source_id: int, target_id: int) -> Memory:
        """Link two memories."""
        ...

    def unlink(self, first_id: int, second_id: int) -> None:
        """Remove a link in whichever direction it was stored."""
        ...

    def import_drafts(
        self,
        rows: Iterable[tuple[Draft, int | None]],
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Bulk import; re-running adds nothing."""
        ...

    # reads
    def get(self, memory_id: int) -> Memory:
        """One memory; NotFoundError if there is none."""
        ...

    def get_many(self, ids: Sequence[int]) -> dict[int, Memory]:
        """Memories by id (missing ids are left out)."""
        ...

    def search(self, raw: str, limit: int = 20, *, keyword_only: bool = False) -> SearchResult:
        """Hybrid search with the query syntax of docs/search.md."""
        ...

    def browse(
        self, flt: SearchFilter | None = None, limit: int = 50, offset: int = 0
    ) -> list[Memory]:
        """Memories newest first, a page at a time."""
        ...

    def count(self, flt: SearchFilter | None = None) -> int:
        """How many memories pass ``flt``."""
        ...

    def pending(self) -> int:
        """Memories not yet searchable by meaning."""
        ...

    def neighbours(self, memory_id: int) -> tuple[list[Memory], list[Memory]]:
        """(memories this one links to, memories linking to it)."""
        ...

    def similar(self, memory_id: int, limit: int = 5) -> list[Hit]:
        """Memories closest in meaning to one memory."""
        ...

    def position_of(self, when: int, flt: SearchFilter | None = None) -> int:
        """Index (newest first) of the first memory at or before ``when``."""
        ...

    def activity(self, unit: str = "day", flt: SearchFilter | None = None) -> list[tuple[int, int]]:
        """Memories per local day, week or month."""
        ...

    def tags(self) -> list[tuple[str, int]]:
        """Tags with their counts, commonest first."""
        ...

    def sources(self) -> list[tuple[str, int]]:
        """Sources with their counts, commonest first."""
        ...

    def stats(self) -> EngineStats:
        """Counts and health facts."""
        ...

    # upkeep and the change feed
    def sync(self, batch_size: int = 256, max_batches: int | None = None) -> SyncReport:
        """Drain the vector outbox."""
        ...

    def check(self, repair: bool = False, batch_size: int = 1000) -> CheckReport:
        """Cross-check SQL against the vectors (and repair)."""
        ...

    def changes(self, after_seq: int, limit: int = 500) -> list[Change]:
        """What was written since feed position ``after_seq``, oldest first."""
        ...

    def latest_seq(self) -> int:
        """The change feed's newest position."""
        ...

    def close(self) -> None:
        """Let go of every resource."""
        ...
