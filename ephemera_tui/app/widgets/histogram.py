"""The timeline's activity histogram: one column per day, week or month, movable by keyboard."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .lines import group_label

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

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.buckets: list[tuple[int, int]] = []
        self.unit = "day"

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
        title.append(f"{group_label(start, self.unit)} {datetime.fromtimestamp(start):%Y}")
        title.append(f" · {count} {'memory' if count == 1 else 'memories'}")
        title.append("   ←/→ period · enter jump", style="dim")
        return Text("\n").join([title, top, bottom, caret])
