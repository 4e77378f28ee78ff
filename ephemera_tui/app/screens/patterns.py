"""Patterns: activity over time, tags rising and falling, sources, importance and confidence,
busiest hours and weekdays (:mod:`ephemera_tui.engine.analytics`, drawn with block characters).

Every bar carries its number and every trend its arrow (▲ rising, ▼ falling), so the screen
reads the same without colour.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Footer

from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen

if TYPE_CHECKING:
    from ...engine import Engine
    from ...engine.analytics import Patterns

UNITS = ("day", "week", "month")
PERIODS = (7, 30, 90, 365)
LEVELS = " ▁▂▃▄▅▆▇█"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def charts() -> Any:
    """The chart helpers (imported on first draw: the engine package is heavy to import, and
    by the time there is something to draw it is loaded)."""
    from ...presentation import charts as module

    return module


class ChartPanel(Widget):
    """A bordered panel whose lines are drawn for its current width by ``draw(width)``."""

    DEFAULT_CSS = """
    ChartPanel { height: auto; border: round $border-blurred; padding: 0 1; }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.border_title = title
        self.draw: Callable[[int], list[Text]] = lambda _width: [Text("…", style="dim")]
        self.rows = 1

    def show(self, draw: Callable[[int], list[Text]], rows: int) -> None:
        self.draw = draw
        self.rows = max(1, rows)
        self.refresh(layout=True)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self.rows

    def render(self) -> Text:
        width = max(10, self.content_region.width)
        return fit(self.draw(width), width)


def fit(lines: list[Text], width: int) -> Text:
    """The lines cut to ``width`` (with an ellipsis), never wrapped, joined."""
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return Text("\n", no_wrap=True).join(lines)


def bar_lines(rows: list[tuple[str, int]], label_width: int) -> Callable[[int], list[Text]]:
    """Labelled bars with the count, scaled to the largest."""

    def draw(width: int) -> list[Text]:
        if not rows or not any(n for _, n in rows):
            return [Text("nothing yet", style="dim")]
        peak = max(n for _, n in rows)
        count_w = max(len(str(n)) for _, n in rows)
        bar_w = max(1, width - label_width - count_w - 2)
        out = []
        for label, n in rows:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{label[:label_width]:<{label_width}} ")
            line.append(f"{n:>{count_w}} ", style="dim")
            line.append(charts().bar(n, peak, bar_w), style="bold")
            out.append(line)
        return out

    return draw


def squeeze(values: list[int], width: int) -> tuple[list[int], int]:
    """``values`` summed in runs of equal length so they fit ``width`` columns, and that
    length: the whole history always shows, older buckets are never cut off."""
    if width <= 0 or len(values) <= width:
        return list(values), 1
    run = math.ceil(len(values) / width)
    return [sum(values[i : i + run]) for i in range(0, len(values), run)], run


def column_lines(values: list[int], axis: str) -> Callable[[int], list[Text]]:
    """Two rows of eighth-blocks (16 levels) with an axis line under them."""

    def draw(width: int) -> list[Text]:
        shown = values[-width:]
        peak = max(shown, default=0) or 1
        top, bottom = Text(no_wrap=True), Text(no_wrap=True)
        for count in shown:
            level = 0 if not count else max(1, round(count / peak * 16))
            top.append(LEVELS[max(0, level - 8)], style="bold")
            bottom.append(LEVELS[min(8, level)], style="bold")
        return [top, bottom, Text(axis[:width], style="dim", no_wrap=True)]

    return draw


class PatternsScreen(JournalScreen):
    """What the journal says about its writer: when, what about, how sure."""

    HELP_TITLE = "Patterns"
    DEFAULT_CSS = """
    PatternsScreen #patterns-body { height: 1fr; }
    PatternsScreen #patterns-summary { height: auto; padding: 0 1; }
    PatternsScreen .patterns-row { height: auto; }
    PatternsScreen .patterns-col { width: 1fr; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.mode('search')", "Search", show=False, id="patterns.back"),
        Binding("u", "cycle_unit", "Group", id="patterns.unit"),
        Binding("p", "cycle_period", "Period", id="patterns.period"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.unit = "week"
        self.period = 30
        self.data: Patterns | None = None
        self.trend_end: float | None = None  # the tag comparison ends here when not now

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="patterns-body"):
            yield ChartPanel("Summary", id="patterns-summary")
            yield ChartPanel("Activity", id="patterns-activity")
            with Horizontal(classes="patterns-row"):
                with Vertical(classes="patterns-col"):
                    yield ChartPanel("Top tags, all time", id="patterns-top")
                    yield ChartPanel("Tags", id="patterns-tags")
                    yield ChartPanel("Sources", id="patterns-sources")
                    yield ChartPanel("Importance", id="patterns-importance")
                with Vertical(classes="patterns-col"):
                    yield ChartPanel("Hour of day", id="patterns-hours")
                    yield ChartPanel("Weekday", id="patterns-weekdays")
                    yield ChartPanel("Confidence", id="patterns-confidence")
        yield StatusLine("Patterns")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#patterns-body").focus()
        self.reload()

    def reload(self) -> None:
        now, period = self.now(), self.period

        def job(engine: Engine) -> tuple[Patterns, float | None]:
            from ...engine.analytics import patterns, tag_trends

            found = patterns(engine, now=now, period_days=period)
            if found.last_at is None or found.last_at >= now - period * 86400:
                return found, None
            # Nothing written lately: compare the journal's own last weeks instead of empty ones.
            end = float(found.last_at + 1)
            rising, falling, recent, previous = tag_trends(engine, end, period)
            found = dataclasses.replace(
                found, rising=rising, falling=falling, recent_count=recent, previous_count=previous
            )
            return found, end

        engine_call(self, job, self._loaded, group="patterns", title="Patterns")

    def panel(self, name: str) -> ChartPanel:
        return self.query_one(f"#patterns-{name}", ChartPanel)

    def _loaded(self, found: tuple[Patterns, float | None]) -> None:
        self.data, self.trend_end = found
        self._draw()

    def _draw(self) -> None:
        p = self.data
        if p is None:
            return
        self.panel("summary").show(self._summary(p), 2)
        unit = self.unit
        series = charts().filled(p.activity[unit], unit, p.utc_offset)
        counts = [n for _, n in series]

        def activity(width: int) -> list[Text]:
            if not counts:
                return [Text("No memories yet.", style="dim"), Text(""), Text("")]
            shown, run = squeeze(counts, width)
            each = f"per {unit}" if run == 1 else f"per {run} {unit}s"
            label = (
                f"{each} · peak {max(shown)} · "
                f"{charts().bucket_label(series[0][0], unit, p.utc_offset)} … "
                f"{charts().bucket_label(series[-1][0], unit, p.utc_offset)}"
            )
            return column_lines(shown, label)(width)

        self.panel("activity").show(activity, 3)
        self.panel("activity").border_title = f"Activity by {unit} (u: change)"
        top = p.top_tags[:8]
        self.panel("top").show(bar_lines(top, 12), len(top) or 1)
        self.panel("tags").show(self._trends(p), max(1, len(p.rising[:5]) + len(p.falling[:5])))
        if self.trend_end is None:
            self.panel("tags").border_title = f"Tags: last {p.period_days} days vs before (p)"
        else:
            until = datetime.fromtimestamp(self.trend_end - 1)
            self.panel(
                "tags"
            ).border_title = (
                f"Tags: {p.period_days} days to {until.day} {until:%b %Y} vs before (p)"
            )
        sources = p.sources[:8]
        self.panel("sources").show(bar_lines(sources, 10), len(sources) or 1)
        self.panel("importance").show(bar_lines(p.importance, 7), len(p.importance))
        self.panel("confidence").show(bar_lines(p.confidence, 7), len(p.confidence))
        hour_axis = "0     6     12    18    23"
        self.panel("hours").show(column_lines(p.hours, hour_axis), 3)
        busiest = "" if p.busiest_hour is None else f" · busiest {p.busiest_hour:02d}h"
        self.panel("hours").border_title = f"Hour of day{busiest}"
        days = list(zip(WEEKDAYS, p.weekdays, strict=True))
        self.panel("weekdays").show(bar_lines(days, 3), 7)

    def _summary(self, p: Patterns) -> Callable[[int], list[Text]]:
        def draw(width: int) -> list[Text]:
            if not p.total:
                return [Text("No memories yet."), Text("")]
            first = charts().local_time(p.first_at or 0, p.utc_offset)
            last = charts().local_time(p.last_at or 0, p.utc_offset)
            one = Text(no_wrap=True, overflow="ellipsis")
            one.append(f"{p.total:,} memories", style="bold")
            one.append(f" · {first:%Y-%m-%d} to {last:%Y-%m-%d} · {p.active_days} active days")
            one.append(f" · {p.per_active_day} per active day")
            two = Text(no_wrap=True, overflow="ellipsis")
            change = p.recent_count - p.previous_count
            span = "last" if self.trend_end is None else "newest"
            two.append(f"{span} {p.period_days} days: {p.recent_count} ({change:+d})")
            two.append(f" · streak {p.current_streak} (longest {p.longest_streak})")
            if p.busiest_weekday:
                two.append(f" · busiest {p.busiest_weekday}")
            return [one, two]

        return draw

    def _trends(self, p: Patterns) -> Callable[[int], list[Text]]:
        def draw(width: int) -> list[Text]:
            rows = [("▲", t) for t in p.rising[:5]] + [("▼", t) for t in p.falling[:5]]
            if not rows:
                return [Text("no change", style="dim")]
            out = []
            for arrow, t in rows:
                line = Text(no_wrap=True, overflow="ellipsis")
                line.append(f"{arrow} ", style="bold")
                line.append(f"{t.previous:>3} → {t.recent:<3} {t.change:+d}  ", style="dim")
                line.append(t.tag)
                out.append(line)
            return out

        return draw

    def action_cycle_unit(self) -> None:
        """Show activity by day, week or month."""
        self.unit = UNITS[(UNITS.index(self.unit) + 1) % len(UNITS)]
        self._draw()

    def action_cycle_period(self) -> None:
        """Compare tags over the last 7, 30, 90 or 365 days."""
        self.period = PERIODS[(PERIODS.index(self.period) + 1) % len(PERIODS)]
        self.reload()
