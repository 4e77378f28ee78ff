"""The timeline's activity histogram: one column per day, week or month, movable by keyboard."""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..format import period_label

LEVELS = " ▁▂▃▄▅▆▇█"


def next_bucket(start: int, unit: str) -> int:
    """Start of the bucket after the one starting at ``start`` (local time)."""
    moment = datetime.fromtimestamp(start)
    if unit == "month":
        month = moment.month % 12 + 1
        year = moment.year + (moment.month == 12)
        return int(moment.replace(year=year, month=month, day=1).timestamp())
    step = timedelta(days=7 if unit == "week" else 1)
    following = (moment + step).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(following.timestamp())


def fill_gaps(buckets: Sequence[tuple[int, int]], unit: str) -> list[tuple[int, int]]:
    """Insert empty buckets between the busy ones so gaps in time show as gaps."""
    if not buckets:
        return []
    counts = dict(buckets)
    out: list[tuple[int, int]] = []
    start, last = buckets[0][0], buckets[-1][0]
    while start <= last and len(out) < 100_000:
        out.append((start, counts.get(start, 0)))
        start = next_bucket(start, unit)
    return out


class Histogram(Widget):
    """Bars of activity; the selected bucket is marked by a caret so it reads without colour."""

    DEFAULT_CSS = """
    Histogram { height: 4; padding: 0 1; }
    """

    selected: reactive[int] = reactive(0)
    """Index of the selected bucket."""

    def __init__(
        self,
        *,
        id: str | None = None,  # noqa: A002 - Textual's name
        now: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.buckets: list[tuple[int, int]] = []
        self.unit = "day"
        self._now = now or time.time

    def set_buckets(self, buckets: Sequence[tuple[int, int]], unit: str) -> None:
        """Show these (start, count) buckets, gaps filled, selecting the newest."""
        self.unit = unit
        self.buckets = fill_gaps(buckets, unit)
        self.selected = max(0, len(self.buckets) - 1)
        self.refresh()

    def index_of(self, when: int) -> int:
        """The bucket a moment falls in."""
        starts = [start for start, _ in self.buckets]
        return max(0, bisect_right(starts, when) - 1)

    @property
    def span(self) -> tuple[int, int] | None:
        """(start, end) of the selected bucket."""
        if not self.buckets:
            return None
        start = self.buckets[self.selected][0]
        return start, next_bucket(start, self.unit)

    def move(self, delta: int) -> None:
        """Select a bucket ``delta`` steps away (clamped)."""
        if self.buckets:
            self.selected = max(0, min(len(self.buckets) - 1, self.selected + delta))

    def busy_from(self, index: int, direction: int) -> int | None:
        """The first bucket with memories from ``index`` on (inclusive), going ``direction``
        (-1 earlier, 1 later); None when there is none that way."""
        step = -1 if direction < 0 else 1
        while 0 <= index < len(self.buckets):
            if self.buckets[index][1]:
                return index
            index += step
        return None

    def step_busy(self, direction: int) -> bool:
        """Select the previous (-1) or next (1) bucket that has memories; False at the end."""
        found = self.busy_from(self.selected + (-1 if direction < 0 else 1), direction)
        if found is None:
            return False
        self.selected = found
        return True

    def leap(self, direction: int) -> bool:
        """Select the busy bucket a larger step away (a month of days, a quarter of weeks, a
        year of months), or the furthest busy one that way if the step overshoots."""
        if not self.buckets:
            return False
        start = datetime.fromtimestamp(self.buckets[self.selected][0])
        months = {"day": 1, "week": 3, "month": 12}.get(self.unit, 1) * (1 if direction > 0 else -1)
        month = start.month - 1 + months
        day = min(start.day, 28)
        target = start.replace(year=start.year + month // 12, month=month % 12 + 1, day=day)
        index = self.index_of(int(target.timestamp()))
        if direction > 0 and int(target.timestamp()) > self.buckets[-1][0]:
            index = len(self.buckets) - 1
        found = self.busy_from(index, direction) or self.busy_from(index, -direction)
        if found is None or found == self.selected:
            return self.step_busy(direction)
        self.selected = found
        return True

    def first_busy(self) -> None:
        """Select the oldest bucket with memories."""
        found = self.busy_from(0, 1)
        if found is not None:
            self.selected = found

    def last_busy(self) -> None:
        """Select the newest bucket with memories."""
        found = self.busy_from(len(self.buckets) - 1, -1)
        if found is not None:
            self.selected = found

    def render(self) -> Text:
        width = max(1, self.content_region.width)
        if not self.buckets:
            return Text("No activity yet.", style="dim")
        first = max(0, min(self.selected - width // 2, len(self.buckets) - width))
        window = self.buckets[first : first + width]
        peak = max((count for _, count in window), default=0) or 1
        top, bottom, caret = Text(), Text(), Text()
        for n, (_, count) in enumerate(window):
            level = 0 if not count else max(1, round(count / peak * 16))
            upper, lower = max(0, level - 8), min(8, level)
            style = "bold" if first + n == self.selected else ""
            top.append(LEVELS[upper], style=style)
            bottom.append(LEVELS[lower], style=style)
            caret.append("▲" if first + n == self.selected else " ")
        start, count = self.buckets[self.selected]
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"by {self.unit}: ", style="bold")
        title.append(period_label(start, self.unit, self._now()))
        title.append(f" · {count} {'memory' if count == 1 else 'memories'}")
        title.append("   ←/→ busy period · [ ] further", style="dim")
        return Text("\n").join([title, top, bottom, caret])
