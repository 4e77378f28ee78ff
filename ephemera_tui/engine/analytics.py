"""Patterns in the journal: activity over time, tags rising and falling, the mix of sources,
importance and confidence distributions, busiest hours and weekdays.

Every figure is one SQL aggregation (GROUP BY on the server, a few hundred rows at most back),
written with SQLAlchemy expressions that run unchanged on SQLite and MySQL/MariaDB. Local time
is a fixed UTC offset (the one in force at ``now``), like the timeline's day buckets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from .dates import MAX_TIMESTAMP, MIN_TIMESTAMP
from .store import FRAGMENTS, TAGS

if TYPE_CHECKING:
    from .core import Engine

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BIN_WIDTH = 32  # importance/confidence 0-255 in 8 bins
BIN_LABELS = tuple(f"{lo}-{lo + BIN_WIDTH - 1}" for lo in range(0, 256, BIN_WIDTH))
UNSET = "unset"
WEEK = 7 * 86400
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class TagTrend:
    """A tag's use in the recent period against the period before it."""

    tag: str
    recent: int
    previous: int

    @property
    def change(self) -> int:
        return self.recent - self.previous

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}


@dataclass(frozen=True, slots=True)
class Patterns:
    """Everything the patterns view and ``ephemera report`` show."""

    now: float
    utc_offset: int
    period_days: int
    total: int
    first_at: int | None
    last_at: int | None
    active_days: int
    longest_streak: int
    current_streak: int
    activity: dict[str, list[tuple[int, int]]]  # unit -> [(bucket start, count)]
    sources: list[tuple[str, int]]
    importance: list[tuple[str, int]]  # 8 bins then "unset"
    confidence: list[tuple[str, int]]
    hours: list[int]  # 24 counts, local time
    weekdays: list[int]  # 7 counts, Monday first
    top_tags: list[tuple[str, int]]
    rising: list[TagTrend] = field(default_factory=list)
    falling: list[TagTrend] = field(default_factory=list)
    recent_count: int = 0
    previous_count: int = 0

    @property
    def busiest_hour(self) -> int | None:
        return _argmax(self.hours)

    @property
    def busiest_weekday(self) -> str | None:
        index = _argmax(self.weekdays)
        return None if index is None else WEEKDAYS[index]

    @property
    def per_active_day(self) -> float:
        return round(self.total / self.active_days, 2) if self.active_days else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "now": self.now,
            "utc_offset": self.utc_offset,
            "period_days": self.period_days,
            "total": self.total,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "active_days": self.active_days,
            "per_active_day": self.per_active_day,
            "longest_streak": self.longest_streak,
            "current_streak": self.current_streak,
            "activity": {u: [list(b) for b in v] for u, v in self.activity.items()},
            "sources": [list(s) for s in self.sources],
            "importance": [list(b) for b in self.importance],
            "confidence": [list(b) for b in self.confidence],
            "hours": self.hours,
            "weekdays": dict(zip(WEEKDAYS, self.weekdays, strict=True)),
            "busiest_hour": self.busiest_hour,
            "busiest_weekday": self.busiest_weekday,
            "top_tags": [list(t) for t in self.top_tags],
            "rising": [t.to_dict() for t in self.rising],
            "falling": [t.to_dict() for t in self.falling],
            "recent_count": self.recent_count,
            "previous_count": self.previous_count,
        }
        return out


def _argmax(values: list[int]) -> int | None:
    if not values or not any(values):
        return None
    return max(range(len(values)), key=lambda i: (values[i], -i))


def local_offset(now: float) -> int:
    """Seconds east of UTC of local time at ``now``."""
    moment = datetime.fromtimestamp(now).astimezone()
    return int((moment.utcoffset() or timedelta()).total_seconds())


def activity(
    engine: Engine, unit: str = "day", utc_offset: int | None = None, now: float | None = None
) -> list[tuple[int, int]]:
    """Memories per local day, week (from Monday) or month: ``[(bucket start, count)]``."""
    if utc_offset is None:
        utc_offset = local_offset(now if now is not None else engine.clock())
    offset = utc_offset
    days = engine.store.activity_days(offset, None)
    buckets: dict[int, int] = {}
    for raw_start, count in days:
        # a stored date outside the accepted range (written before it was enforced) counts
        # at the range's nearest end instead of breaking the report
        day_start = min(max(int(raw_start), MIN_TIMESTAMP), MAX_TIMESTAMP)
        local = EPOCH + timedelta(seconds=day_start + offset)  # naive local midnight
        if unit == "week":
            local = local - timedelta(days=local.weekday())
        elif unit == "month":
            local = local.replace(day=1)
        elif unit != "day":
            raise ValueError(f"unknown unit {unit!r} (day, week or month)")
        start = int((local - EPOCH).total_seconds()) - offset
        buckets[start] = buckets.get(start, 0) + count
    return sorted(buckets.items())


def streaks(days: list[tuple[int, int]], now: float) -> tuple[int, int]:
    """(longest run of consecutive active days, the run ending today or yesterday)."""
    starts = sorted(start for start, count in days if count)
    longest = run = 0
    previous: int | None = None
    for start in starts:
        # Day starts are a fixed offset apart: 86400 s (one fixed UTC offset throughout).
        run = run + 1 if previous is not None and start - previous == 86400 else 1
        longest = max(longest, run)
        previous = start
    current = 0
    if starts and now - starts[-1] < 2 * 86400:
        current = run
    return longest, current


def source_mix(engine: Engine) -> list[tuple[str, int]]:
    return engine.store.source_counts()


def distribution(engine: Engine, column: str) -> list[tuple[str, int]]:
    """Counts of ``importance`` or ``confidence`` in 8 bins of 32, then memories without one."""
    if column not in ("importance", "confidence"):
        raise ValueError(f"no distribution for {column!r}")
    col = FRAGMENTS.c[column]
    with engine.store.read() as conn:
        rows = conn.execute(select(col, func.count()).group_by(col)).all()
    bins = [0] * len(BIN_LABELS)
    unset = 0
    for value, count in rows:
        if value is None:
            unset += int(count)
        else:
            bins[min(int(value) // BIN_WIDTH, len(bins) - 1)] += int(count)
    return [*zip(BIN_LABELS, bins, strict=True), (UNSET, unset)]


def hours_and_weekdays(engine: Engine, utc_offset: int) -> tuple[list[int], list[int]]:
    """Memories per local hour of day (24) and per weekday (7, Monday first).

    Groups by the hour of the week, ``(t % week) - (t % hour)`` with ``t`` in local seconds:
    integer arithmetic only, so SQLite and MySQL agree (no date functions, no division).
    """
    local = FRAGMENTS.c.created_at + utc_offset
    hour_of_week = ((local % WEEK) - (local % 3600)).label("how")
    with engine.store.read() as conn:
        rows = conn.execute(select(hour_of_week, func.count()).group_by(hour_of_week)).all()
    hours = [0] * 24
    weekdays = [0] * 7
    for value, count in rows:
        index = (int(value) % WEEK) // 3600  # 0 = Thursday 00:00 (1970-01-01 was a Thursday)
        hours[index % 24] += int(count)
        weekdays[(3 + index // 24) % 7] += int(count)
    return hours, weekdays


def tag_trends(
    engine: Engine, now: float, period_days: int = 30, limit: int = 10
) -> tuple[list[TagTrend], list[TagTrend], int, int]:
    """Tags used more (rising) and less (falling) in the last ``period_days`` than in the
    ``period_days`` before; also the memory counts of the two periods."""
    mid = int(now) - period_days * 86400
    start = mid - period_days * 86400
    end = int(now) + 1
    f, t = FRAGMENTS.c, TAGS.c
    recent = func.sum(case((f.created_at >= mid, 1), else_=0))
    previous = func.sum(case((f.created_at < mid, 1), else_=0))
    in_range = (f.created_at >= start, f.created_at < end)
    with engine.store.read() as conn:
        rows = conn.execute(
            select(t.tag, recent, previous)
            .select_from(TAGS.join(FRAGMENTS, f.id == t.memory_id))
            .where(*in_range)
            .group_by(t.tag)
        ).all()
        counts = conn.execute(select(recent, previous).where(*in_range)).one()
    trends = [TagTrend(r[0], int(r[1] or 0), int(r[2] or 0)) for r in rows]
    rising = sorted(
        (x for x in trends if x.change > 0), key=lambda x: (-x.change, -x.recent, x.tag)
    )
    falling = sorted(
        (x for x in trends if x.change < 0), key=lambda x: (x.change, -x.previous, x.tag)
    )
    return rising[:limit], falling[:limit], int(counts[0] or 0), int(counts[1] or 0)


def patterns(
    engine: Engine,
    now: float | None = None,
    period_days: int = 30,
    utc_offset: int | None = None,
    top: int = 10,
) -> Patterns:
    """Every pattern at once (a dozen small queries)."""
    now = engine.clock() if now is None else now
    offset = local_offset(now) if utc_offset is None else utc_offset
    days = activity(engine, "day", offset)
    units = {
        "day": days,
        "week": activity(engine, "week", offset),
        "month": activity(engine, "month", offset),
    }
    with engine.store.read() as conn:
        total, first, last = conn.execute(
            select(func.count(), func.min(FRAGMENTS.c.created_at), func.max(FRAGMENTS.c.created_at))
        ).one()
    hours, weekdays = hours_and_weekdays(engine, offset)
    rising, falling, recent_count, previous_count = tag_trends(engine, now, period_days, top)
    longest, current = streaks(days, now)
    return Patterns(
        now=now,
        utc_offset=offset,
        period_days=period_days,
        total=int(total or 0),
        first_at=None if first is None else int(first),
        last_at=None if last is None else int(last),
        active_days=sum(1 for _, c in days if c),
        longest_streak=longest,
        current_streak=current,
        activity=units,
        sources=source_mix(engine),
        importance=distribution(engine, "importance"),
        confidence=distribution(engine, "confidence"),
        hours=hours,
        weekdays=weekdays,
        top_tags=engine.store.tag_counts(top),
        rising=rising,
        falling=falling,
        recent_count=recent_count,
        previous_count=previous_count,
    )
