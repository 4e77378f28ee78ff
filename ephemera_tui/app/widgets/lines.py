"""The timeline's list: a Line-API scroll view that pages memories from the engine on demand.

Only the rows on screen are rendered and only their pages (``PAGE_SIZE`` memories) are fetched,
so a hundred thousand memories scroll as fast as a hundred.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..format import one_line, period_key, period_label

if TYPE_CHECKING:
    from ...engine import Memory

PAGE_SIZE = 100
GUTTERS = {"day": 16, "week": 18, "month": 15}
"""Width of the group label column per grouping: 'Wed 01 Dec 2022', '27 Nov–3 Dec 2022'."""


def group_label(when: float, unit: str, now: float) -> str:
    """The label of the day, week or month a moment falls in (year only if not this one)."""
    return period_label(when, unit, now)


def group_key(when: float, unit: str) -> tuple[int, ...]:
    """A key equal for two moments in the same group."""
    return period_key(when, unit)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of memories fetched for one generation of the list."""

    generation: int
    number: int
    memories: Sequence[Memory]


class MemoryLines(ScrollView, can_focus=True):
    """Memories newest first, one per line, grouped by a label in the left gutter."""

    HELP_TITLE = "In the list"

    DEFAULT_CSS = """
    MemoryLines { height: 1fr; overflow-x: hidden; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "Down", show=False, id="lines.down"),
        Binding("up,k", "move(-1)", "Up", show=False, id="lines.up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="lines.page_down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, id="lines.page_up"),
        Binding("home,g", "to_start", "Newest", show=False, id="lines.newest"),
        Binding("end,G", "to_end", "Oldest", show=False, id="lines.oldest"),
    ]

    cursor: reactive[int] = reactive(0)
    """Index (newest first) of the highlighted memory."""

    class PageWanted(Message):
        """A page not yet fetched came into view."""

        def __init__(self, generation: int, number: int) -> None:
            super().__init__()
            self.generation = generation
            self.number = number

    class CursorMoved(Message):
        """The highlighted memory changed (None while its page loads)."""

        def __init__(self, index: int, memory: Memory | None) -> None:
            super().__init__()
            self.index = index
            self.memory = memory

    def __init__(self, now: Callable[[], float], *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._now = now
        self.total = 0
        self.unit = "day"
        self.generation = 0
        self._pages: dict[int, Sequence[Memory]] = {}
        self._wanted: set[int] = set()

    def reset(self, total: int, unit: str | None = None, cursor: int | None = None) -> None:
        """Start over with ``total`` rows (the data changed); pages are fetched again.
        ``cursor`` puts the highlight on that row (where the memory it was on moved to)."""
        self.generation += 1
        self.total = total
        self.unit = unit or self.unit
        self._pages.clear()
        self._wanted.clear()
        self.virtual_size = Size(0, total)
        wanted = self.cursor if cursor is None else cursor
        self.cursor = min(max(0, wanted), max(0, total - 1))
        self.refresh()

    def add_page(self, page: Page) -> None:
        """Store a fetched page (ignored if the list was reset since it was asked for)."""
        if page.generation != self.generation:
            return
        self._pages[page.number] = page.memories
        self._wanted.discard(page.number)
        self.refresh()
        if self.cursor // PAGE_SIZE == page.number:
            self.post_message(self.CursorMoved(self.cursor, self.memory_at(self.cursor)))

    def memory_at(self, index: int) -> Memory | None:
        """The memory at ``index`` if its page is here; otherwise ask for the page."""
        if not 0 <= index < self.total:
            return None
        number, row = divmod(index, PAGE_SIZE)
        page = self._pages.get(number)
        if page is None:
            if number not in self._wanted:
                self._wanted.add(number)
                self.post_message(self.PageWanted(self.generation, number))
            return None
        return page[row] if row < len(page) else None

    @property
    def current(self) -> Memory | None:
        """The highlighted memory, if loaded."""
        return self.memory_at(self.cursor)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if index >= self.total:
            if self.total == 0 and y == 0:
                text = Text(" No memories yet. Press ctrl+n to capture one.", style="dim")
                return self._strip(text, width, style)
            return Strip.blank(width, style)
        gutter = GUTTERS.get(self.unit, 16)
        memory = self.memory_at(index)
        if memory is None:
            return self._strip(Text(" " * gutter + "│ …", style="dim"), width, style)
        previous = self.memory_at(index - 1) if index else None
        new_group = previous is None or group_key(previous.created_at, self.unit) != group_key(
            memory.created_at, self.unit
        )
        # The top row always names its group, so a group scrolled halfway is never unlabelled.
        labelled = new_group or y == 0
        label = group_label(memory.created_at, self.unit, self._now()) if labelled else ""
        moment = datetime.fromtimestamp(memory.created_at)
        clock = moment.strftime("%H:%M") if self.unit == "day" else moment.strftime("%a %d")
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{label:<{gutter}}", style="bold" if new_group else "dim")
        line.append("│ ", style="dim")
        line.append(f"{clock:<6}  " if self.unit != "day" else f"{clock:<5}  ", style="dim")
        line.append(one_line(memory.content))
        tail = f"  {one_line(memory.source)} "
        room = width - len(tail)
        if line.cell_len > room:
            line.truncate(max(room, gutter + 10), overflow="ellipsis")
        else:
            line.pad_right(room - line.cell_len)
        line.append(tail, style="dim")
        if index == self.cursor:
            line.stylize("reverse" if self.has_focus else "bold underline")
        return self._strip(line, width, style)

    def _strip(self, text: Text, width: int, style: Style) -> Strip:
        text.truncate(width, overflow="ellipsis")
        segments = list(text.render(self.app.console))
        if not segments:
            return Strip([Segment(" " * width, style)])
        return Strip(segments).crop_extend(0, width, style).apply_style(style)

    def watch_cursor(self, old: int, new: int) -> None:
        height = self.scrollable_content_region.height
        if new < self.scroll_offset.y:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif height and new >= self.scroll_offset.y + height:
            self.scroll_to(y=new - height + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(new, self.memory_at(new)))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def jump_to(self, index: int) -> None:
        """Highlight ``index`` and scroll it to the top of the view."""
        index = max(0, min(index, self.total - 1))
        self.cursor = index
        self.scroll_to(y=index, animate=False, immediate=True)
        self.refresh()

    def action_move(self, delta: int) -> None:
        """Move the highlight by ``delta`` rows."""
        if self.total:
            self.cursor = max(0, min(self.total - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        """Move a screenful up or down."""
        self.action_move(direction * max(1, self.scrollable_content_region.height - 1))

    def action_to_start(self) -> None:
        """Highlight the newest memory."""
        self.action_move(-self.total)

    def action_to_end(self) -> None:
        """Highlight the oldest memory."""
        self.action_move(self.total)

    def on_click(self, event: object) -> None:
        """Clicking a row highlights it (mouse is optional)."""
        y = getattr(event, "y", None)
        if isinstance(y, int):
            self.action_move(self.scroll_offset.y + y - self.cursor)
