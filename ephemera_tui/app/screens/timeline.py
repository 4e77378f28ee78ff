"""Timeline: every memory newest first, grouped by day, week or month, with an activity
histogram to move along and jumps to any date or to this day in earlier years."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from ..queries import index_of, on_this_day
from ..widgets.histogram import Histogram
from ..widgets.lines import PAGE_SIZE, MemoryLines, Page
from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen
from .picker import PickerScreen
from .prompt import PromptScreen

if TYPE_CHECKING:
    from ...engine import Engine, Hit, Memory

UNITS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class TimelineData:
    """How many memories there are and how they spread over time."""

    total: int
    buckets: list[tuple[int, int]]
    unit: str
    cursor: int | None = None  # where the memory to keep highlighted is now


class TimelineScreen(JournalScreen):
    """Scroll through time; the histogram and the list move together."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.mode('search')", "Search", show=False, id="timeline.back"),
        # Priority: the list (a scroll view) would take ←/→ to scroll sideways.
        Binding(
            "left,h", "period(-1)", "Earlier", show=False, priority=True, id="timeline.earlier"
        ),
        Binding("right,l", "period(1)", "Later", show=False, priority=True, id="timeline.later"),
        Binding(
            "left_square_bracket", "leap(-1)", "Much earlier", show=False, id="timeline.leap_back"
        ),
        Binding("right_square_bracket", "leap(1)", "Much later", show=False, id="timeline.leap_on"),
        Binding("enter", "read", "Read", id="timeline.read"),
        Binding("u", "cycle_unit", "Group", id="timeline.unit"),
        Binding("t", "jump_to_date", "Go to", id="timeline.jump"),
        Binding("o", "on_this_day", "This day", id="timeline.on_this_day"),
        Binding("L", "open_graph", "Links", show=False, id="timeline.graph"),
        Binding("e", "edit", "Edit", show=False, id="timeline.edit"),
        Binding("d", "delete", "Delete", show=False, id="timeline.delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.unit = "day"

    def compose(self) -> ComposeResult:
        yield Histogram(id="histogram", now=self.now)
        yield MemoryLines(self.now, id="lines")
        yield StatusLine("Timeline")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.lines.focus()
        self.reload()

    @property
    def lines(self) -> MemoryLines:
        """The memory list."""
        return self.query_one(MemoryLines)

    @property
    def histogram(self) -> Histogram:
        """The activity histogram."""
        return self.query_one(Histogram)

    @property
    def current_memory(self) -> Memory | None:
        """The highlighted memory (for app-wide actions)."""
        return self.lines.current

    def reload(self) -> None:
        unit = self.unit
        # Keep the highlight on the memory it was on (or on the one just saved), not on the
        # row number: a memory arriving at the top would otherwise slide another under it.
        keep = self.take_followed() or self.lines.current

        def job(engine: Engine) -> TimelineData:
            cursor = index_of(engine, keep) if keep is not None else None
            return TimelineData(engine.count(), engine.activity(unit), unit, cursor)

        engine_call(self, job, self._loaded, group="timeline")

    def _loaded(self, data: TimelineData) -> None:
        self.unit = data.unit
        self.histogram.set_buckets(data.buckets, data.unit)
        self.lines.reset(data.total, data.unit, cursor=data.cursor)
        self.lines.border_title = f"Timeline · by {data.unit}"
        current = self.lines.current
        if current is not None:
            self.histogram.selected = self.histogram.index_of(current.created_at)

    def on_memory_lines_page_wanted(self, event: MemoryLines.PageWanted) -> None:
        generation, number = event.generation, event.number

        def job(engine: Engine) -> Page:
            offset = number * PAGE_SIZE
            return Page(generation, number, engine.browse(limit=PAGE_SIZE, offset=offset))

        engine_call(self, job, self.lines.add_page, group=f"page-{number}", exclusive=False)

    def on_memory_lines_cursor_moved(self, event: MemoryLines.CursorMoved) -> None:
        if event.memory is not None:
            self.histogram.selected = self.histogram.index_of(event.memory.created_at)

    def action_period(self, delta: int) -> None:
        """Jump to the previous or next period that has memories."""
        if self.histogram.step_busy(delta):
            self._jump_to_selected()

    def action_leap(self, delta: int) -> None:
        """Jump further: a month of days, a quarter of weeks, a year of months."""
        if self.histogram.leap(delta):
            self._jump_to_selected()

    def _jump_to_selected(self) -> None:
        span = self.histogram.span
        if span is not None:
            self._jump_to_time(span[1] - 1)

    def _jump_to_time(self, moment: int) -> None:
        def job(engine: Engine) -> int:
            return engine.position_of(moment)

        engine_call(self, job, self.lines.jump_to, group="jump")

    def action_cycle_unit(self) -> None:
        """Group by day, then week, then month."""
        self.unit = UNITS[(UNITS.index(self.unit) + 1) % len(UNITS)]
        self.reload()

    def set_unit(self, unit: str) -> None:
        """Group by ``unit`` (day, week or month)."""
        self.unit = unit
        self.reload()

    @work(exclusive=True, group="jump-prompt")
    async def action_jump_to_date(self) -> None:
        """Ask for a date (ISO or natural) and jump there."""
        answer = await self.app.push_screen_wait(
            PromptScreen(
                "Go to date",
                "e.g. 2024-05-01, 2024-05, yesterday, last week, 3 months ago",
                placeholder="date",
                blink=self.journal.blink,
            )
        )
        if not answer:
            return
        now = self.now()

        def job(engine: Engine) -> tuple[int, int]:
            from ...engine.query import parse_when

            start, end = parse_when(answer, now)
            return start, engine.position_of(end - 1)

        engine_call(self, job, self._jumped, group="jump", title="Cannot go there")

    def _jumped(self, found: tuple[int, int]) -> None:
        start, position = found
        self.lines.jump_to(position)
        self.histogram.selected = self.histogram.index_of(start)

    def action_on_this_day(self) -> None:
        """Show what happened on this day in earlier years."""
        now = self.now()

        def job(engine: Engine) -> list[Hit]:
            from ...engine import Hit

            return [Hit(m, 0.0) for m in on_this_day(engine, now)]

        engine_call(self, job, self._show_on_this_day, group="on-this-day-load")

    @work(exclusive=True, group="on-this-day-pick")
    async def _show_on_this_day(self, hits: list[Hit]) -> None:
        chosen = await self.app.push_screen_wait(
            PickerScreen(
                "On this day, in earlier years",
                hits,
                searchable=False,
                empty="Nothing from this day in earlier years.",
            )
        )
        if chosen is not None:
            self.journal.show_in_graph(chosen)

    def action_read(self) -> None:
        """Read the highlighted memory in full."""
        memory = self.lines.current
        if memory is not None:
            self.journal.read_memory(memory)

    def action_open_graph(self) -> None:
        """Open the highlighted memory in the association graph."""
        memory = self.lines.current
        if memory is not None:
            self.journal.show_in_graph(memory.id)

    def action_edit(self) -> None:
        """Edit the highlighted memory."""
        memory = self.lines.current
        if memory is not None:
            self.journal.edit_memory(memory)

    def action_delete(self) -> None:
        """Delete the highlighted memory, after confirmation."""
        memory = self.lines.current
        if memory is not None:
            self.journal.delete_memory(memory)
