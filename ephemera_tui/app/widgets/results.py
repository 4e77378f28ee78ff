"""A list of memories (search hits or graph neighbours) with vim keys, two lines per entry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..format import meta_line, snippet
from .rows import FixedRows, row_cache

if TYPE_CHECKING:
    from ...engine import Hit

NEAR_END = 10
"""Ask for more hits when the highlight comes this close to the last one loaded."""


class MemoryList(OptionList):
    """An OptionList with vim movement; subclasses decide what each option shows."""

    HELP_TITLE = "In the list"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "first", "First", show=False, id="list.first"),
        Binding("G", "last", "Last", show=False, id="list.last"),
    ]

    def refresh_times(self) -> None:
        """Draw the options again, so relative times ("3 min ago") move on."""
        self._clear_caches()
        self.refresh()


class ResultList(MemoryList):
    """Search hits: a highlighted snippet, then when, source, importance and tags."""

    class NearEnd(Message):
        """The highlight or the scroll came close to the last hit loaded: time for more."""

    def __init__(self, *, id: str | None = None, now: Callable[[], float] | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.hits: tuple[Hit, ...] = ()
        self._now = now
        self._rows = row_cache()

    def _clock(self) -> float:
        if self._now is not None:
            return self._now()
        return float(getattr(self.app, "clock", lambda: 0.0)())

    def _option(self, hit: Hit) -> Option:
        memory, terms = hit.memory, hit.matched_terms

        def rows() -> tuple[Text, Text]:  # when drawn, so "3 min ago" is right then
            return snippet(memory.content, terms), meta_line(memory, self._clock())

        return Option(FixedRows(self, 2, rows, self._rows), id=str(memory.id))

    def show_hits(self, hits: Sequence[Hit], now: float | None = None, keep: bool = False) -> None:
        """Replace the options with these hits; ``keep`` keeps the highlighted memory.

        (``now`` is accepted for callers of the old signature; times are read when drawn.)"""
        previous = self.current_hit if keep else None
        self.select_memory(hits, previous.memory.id if previous is not None else None)

    def select_memory(self, hits: Sequence[Hit], memory_id: int | None) -> bool:
        """Show ``hits`` and highlight ``memory_id`` (the first hit when absent); True if found."""
        fresh = tuple(hits)
        # The same hits again (a space typed, a refresh): keep the options, since laying out
        # every option again is most of a keystroke's time on the UI thread.
        if fresh != self.hits or self.option_count != len(fresh):
            self.hits = fresh
            self.set_options([self._option(h) for h in self.hits])
        if not self.hits:
            return False
        index = next((n for n, h in enumerate(self.hits) if h.memory.id == memory_id), None)
        self.highlighted = index or 0
        if index:
            self.scroll_to_highlight()
        return index is not None

    def append_hits(self, hits: Sequence[Hit]) -> int:
        """Add the hits not yet listed at the end (the highlight stays); how many were new."""
        shown = {h.memory.id for h in self.hits}
        fresh = [h for h in hits if h.memory.id not in shown]
        if not fresh:
            return 0
        self.hits = (*self.hits, *fresh)
        self.add_options([self._option(h) for h in fresh])
        return len(fresh)

    @property
    def current_hit(self) -> Hit | None:
        """The highlighted hit, if any."""
        index = self.highlighted
        if index is None or not 0 <= index < len(self.hits):
            return None
        return self.hits[index]

    def empty_message(self, message: str) -> None:
        """Show a single disabled line instead of hits."""
        self.hits = ()
        self.set_options([Option(Text(message, style="dim"), disabled=True)])

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        if highlighted is not None and highlighted >= len(self.hits) - NEAR_END and self.hits:
            self.post_message(self.NearEnd())

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.hits and new >= self.max_scroll_y - 2 * NEAR_END and new > old:
            self.post_message(self.NearEnd())
