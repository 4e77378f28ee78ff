"""Read one memory in full: the whole text, then its facts, tags, notes and links, scrollable.

Enter on a search hit or a timeline row opens it; the links view is one key away (``o``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from ..format import links_text, memory_detail, memory_label
from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen

if TYPE_CHECKING:
    from ...engine import Engine, Memory


@dataclass(frozen=True, slots=True)
class Reading:
    """A memory and the memories it links with, both ways."""

    memory: Memory
    outgoing: list[Memory]
    incoming: list[Memory]


class ReaderScreen(JournalScreen):
    """A full-screen, scrollable view of one memory."""

    HELP_TITLE = "Reader"
    DEFAULT_CSS = """
    ReaderScreen #reader { height: 1fr; border: round $border; padding: 0 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="reader.close"),
        Binding("down,j", "scroll(1)", "Down", show=False, id="reader.down"),
        Binding("up,k", "scroll(-1)", "Up", show=False, id="reader.up"),
        Binding("space,pagedown", "page(1)", "Page down", show=False, id="reader.page_down"),
        Binding("pageup,b", "page(-1)", "Page up", show=False, id="reader.page_up"),
        Binding("home,g", "top", "Top", show=False, id="reader.top"),
        Binding("end,G", "bottom", "Bottom", show=False, id="reader.bottom"),
        Binding("o", "open_graph", "Links", id="reader.graph"),
        Binding("e", "edit", "Edit", id="reader.edit"),
        Binding("d", "delete", "Delete", id="reader.delete"),
    ]

    def __init__(self, memory: Memory) -> None:
        super().__init__()
        self.memory = memory
        self.reading: Reading | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="reader"):
            yield Static(id="reader-text")
        yield StatusLine("Reader")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#reader").focus()
        self._show()
        self.reload()

    @property
    def current_memory(self) -> Memory:
        """The memory being read (for app-wide actions)."""
        return self.memory

    def reload(self) -> None:
        memory_id = self.memory.id

        def job(engine: Engine) -> Reading | None:
            from ...engine import NotFoundError

            try:
                memory = engine.get(memory_id)
            except NotFoundError:
                return None
            outgoing, incoming = engine.neighbours(memory_id)
            return Reading(memory, outgoing, incoming)

        engine_call(self, job, self._loaded, group="reader")

    def _loaded(self, reading: Reading | None) -> None:
        if reading is None:  # deleted (here or elsewhere): nothing left to read
            self.dismiss()
            return
        self.reading = reading
        self.memory = reading.memory
        self._show()

    def refresh_times(self) -> None:
        self._show()

    def _show(self) -> None:
        pane = self.query_one("#reader")
        pane.border_title = memory_label(self.memory, 60)
        width = max(20, pane.content_region.width or self.app.size.width - 6)
        body = memory_detail(self.memory, self.now(), width)
        if self.reading is not None:
            links = links_text(self.reading.outgoing, self.reading.incoming, width)
            if not links.plain:
                links = Text("\nLinks\n", style="bold underline")
                links.append("none yet: o opens the graph, where + links it to another\n")
            body.append_text(links)
        else:
            body.append("\n")
            body.append("loading links…", style="dim")
        self.query_one("#reader-text", Static).update(body)
        pane.border_subtitle = Text("esc back · o links · e edit · d delete", style="dim")

    def action_close(self) -> None:
        """Back to the list."""
        self.dismiss()

    def action_scroll(self, lines: int) -> None:
        """Scroll by lines."""
        self.query_one("#reader", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        """Scroll by a screenful."""
        pane = self.query_one("#reader", VerticalScroll)
        pane.scroll_relative(y=direction * max(1, pane.content_region.height - 1), animate=False)

    def action_top(self) -> None:
        """Back to the beginning."""
        self.query_one("#reader", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        """To the end (notes and links)."""
        self.query_one("#reader", VerticalScroll).scroll_end(animate=False)

    def action_open_graph(self) -> None:
        """Show this memory's links in the association graph."""
        memory_id = self.memory.id
        self.dismiss()
        self.journal.show_in_graph(memory_id)

    def action_edit(self) -> None:
        """Edit this memory."""
        self.journal.edit_memory(self.memory)

    def action_delete(self) -> None:
        """Delete this memory, after confirmation."""
        self.journal.delete_memory(self.memory)
