"""Small compositions of engine calls the UI needs (run them in workers, never on the UI thread).

``on_this_day`` and ``journal_state`` are built from public engine methods; the engine has no
single call for either.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..engine.observability.instrument import unrecorded

if TYPE_CHECKING:
    from ..engine import Engine, Memory
    from ..engine.sync.worker import Worker


@dataclass(frozen=True, slots=True)
class JournalState:
    """What the status line shows, plus a cheap signature to notice other processes' writes."""

    count: int
    pending: int
    newest_id: int | None
    vector_state: str
    sync_error: str | None = None
    notice: str | None = None  # news from the upkeep pass (a background index build)
    seq: int = 0  # the change feed's newest position: moves with every write, anywhere

    @property
    def signature(self) -> tuple[int, int | None, int]:
        """Changes when memories are added, edited or removed (here or by another process)."""
        return (self.count, self.newest_id, self.seq)


def journal_state(
    engine: Engine, upkeep: Worker | None = None, previous: JournalState | None = None
) -> JournalState:
    """Optionally run one upkeep pass (drain the outbox, cross-check a slice, back up when due),
    then count memories and pending vectors. With ``previous``, the counts are taken again
    only when the change feed has moved (one indexed read otherwise: an idle app does not
    count a large table every second)."""
    with unrecorded():  # the tick's own look-ups are not user-facing latency
        return _journal_state(engine, upkeep, previous)


def _journal_state(
    engine: Engine, upkeep: Worker | None, previous: JournalState | None
) -> JournalState:
    error: str | None = None
    notice: str | None = None
    if upkeep is not None:
        run = upkeep.run_once()
        error = "; ".join(run.errors) or None
        notice = run.index
    seq = engine.latest_seq()
    status = engine.vector_status
    vector_state = "" if status == "ok" else status
    sync_error = error if status == "ok" else None
    if previous is not None and previous.seq == seq:
        return replace(
            previous,
            pending=engine.pending(),
            vector_state=vector_state,
            sync_error=sync_error,
            notice=notice,
        )
    newest = engine.browse(limit=1)
    return JournalState(
        count=engine.count(),
        pending=engine.pending(),
        newest_id=newest[0].id if newest else None,
        vector_state=vector_state,
        sync_error=sync_error,
        notice=notice,
        seq=seq,
    )


def on_this_day(engine: Engine, now: float, per_year: int = 20) -> list[Memory]:
    """Memories from this calendar day in earlier years, the most recent year first."""
    from ..engine import SearchFilter

    buckets = engine.activity("month")
    if not buckets:
        return []
    today = datetime.fromtimestamp(now)
    first_year = datetime.fromtimestamp(buckets[0][0]).year
    found: list[Memory] = []
    for year in range(today.year - 1, first_year - 1, -1):
        day = min(today.day, 28) if (today.month, today.day) == (2, 29) else today.day
        start = datetime(year, today.month, day)
        end = start + timedelta(days=1)
        flt = SearchFilter(after=int(start.timestamp()), before=int(end.timestamp()))
        found.extend(engine.browse(flt, limit=per_year))
    return found


def index_of(engine: Engine, memory: Memory, window: int = 50) -> int | None:
    """Where ``memory`` sits in the newest-first list of all memories, None if it is gone.

    The engine answers how many memories are newer than a moment; the memory is then found
    among the few that share its second (the list breaks ties by id)."""
    start = engine.position_of(memory.created_at)
    for offset, found in enumerate(engine.browse(limit=window, offset=start)):
        if found.id == memory.id:
            return start + offset
        if found.created_at < memory.created_at:
            break
    return None
