"""A list of memories (search hits or graph neighbours) with vim keys, two lines per entry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..format import meta_line, snippet

if TYPE_CHECKING:
    from ...engine import Hit


class MemoryList(OptionList):
    """An OptionList with vim movement; subclasses decide what each option shows."""

    HELP_TITLE = "In the list"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "first", "First", show=False, id="list.first"),
        Binding("G", "last", "Last", show=False, id="list.last"),
    ]


class ResultList(MemoryList):
    """Search hits: a highlighted snippet, then when, source, importance and tags."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.hits: tuple[Hit, ...] = ()

    def show_hits(self, hits: Sequence[Hit], now: float, keep: bool = False) -> None:
        """Replace the options with these hits; ``keep`` keeps the highlighted memory."""
        previous = self.current_hit if keep else None
        self.hits = tuple(hits)
        options = [
            Option(
                Group(snippet(h.memory.content, h.matched_terms), meta_line(h.memory, now)),
                id=str(h.memory.id),
            )
            for h in self.hits
        ]
        self.set_options(options)
        if not self.hits:
            return
        index = 0
        if previous is not None:
            for n, hit in enumerate(self.hits):
                if hit.memory.id == previous.memory.id:
                    index = n
                    break
        self.highlighted = index

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
