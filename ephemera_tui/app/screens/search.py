"""The home screen: search as you type, a result list, a preview pane and "why this hit"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Input, OptionList, Static
from textual.worker import get_current_worker

from ..format import links_text, memory_detail, why_text
from ..widgets.inputs import text_input
from ..widgets.results import ResultList
from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen

if TYPE_CHECKING:
    from ...engine import Engine, Hit, Memory, SearchResult

RESULT_LIMIT = 50
PLACEHOLDER = "Search: words, tag:x source:y importance>=200 after:yesterday"


@dataclass(frozen=True, slots=True)
class Preview:
    """What the preview pane shows for one memory."""

    memory: Memory
    outgoing: list[Memory]
    incoming: list[Memory]


class SearchScreen(JournalScreen):
    """Type to search; the list follows every keystroke, the preview follows the highlight."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Clear", show=False, id="search.back"),
        Binding("down", "move(1)", "Next", show=False, id="search.next"),
        Binding("up", "move(-1)", "Previous", show=False, id="search.previous"),
        Binding("slash", "focus_query", "Search box", show=False, id="search.focus"),
        Binding("enter,o", "open_graph", "Links", id="search.graph"),
        Binding("e", "edit", "Edit", id="search.edit"),
        Binding("d", "delete", "Delete", show=False, id="search.delete"),
        Binding("w", "toggle_why", "Why", id="search.why"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_why = False
        self.query_text = ""
        self.preview: Preview | None = None

    def compose(self) -> ComposeResult:
        yield text_input(placeholder=PLACEHOLDER, id="query", blink=self.journal.blink)
        with Horizontal(id="search-body"):
            yield ResultList(id="results")
            with VerticalScroll(id="preview-pane"):
                yield Static(id="preview")
        yield StatusLine("Search")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#query", Input).focus()
        self.query_one("#preview-pane").border_title = "Preview"
        self.reload()

    @property
    def results(self) -> ResultList:
        """The result list."""
        return self.query_one(ResultList)

    def reload(self) -> None:
        self.run_search(self.query_text, keep=True)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "query":
            self.query_text = event.value
            self.run_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "query" and self.results.hits:
            self.results.focus()

    def run_search(self, query: str, keep: bool = False) -> None:
        """Search in a worker; a newer query cancels the one still running."""

        def job(engine: Engine) -> SearchResult:
            if not keep:
                # Keyword hits first (a few ms), then the hybrid ranking replaces them.
                quick = engine.search(query, limit=RESULT_LIMIT, keyword_only=True)
                if quick.mode == "keyword" and not get_current_worker().is_cancelled:
                    self.app.call_from_thread(done, quick)
            return engine.search(query, limit=RESULT_LIMIT)

        def done(result: SearchResult) -> None:
            self._search_finished(result, keep)

        engine_call(self, job, done, group="search", failed=self._search_failed)

    def _search_finished(self, result: SearchResult, keep: bool = False) -> None:
        if result.query != self.query_text:
            return
        self.results.show_hits(result.hits, self.now(), keep=keep)
        self._load_preview()
        if not result.hits:
            message = (
                "Nothing yet: press ctrl+n to capture a memory."
                if not result.query.strip()
                else "No memories match."
            )
            self.results.empty_message(message)
            self._show_preview(None)
        noun = "hit" if len(result.hits) == 1 else "hits"
        if result.mode == "browse":
            subtitle = f"{len(result.hits)} most recent" if result.hits else "empty"
        else:
            subtitle = f"{len(result.hits)} {noun} · {result.mode}"
        if result.notices:
            subtitle += " · " + result.notices[-1]
        self.query_one("#query", Input).border_subtitle = Text(subtitle)

    def _search_failed(self, message: str) -> None:
        self.query_one("#query", Input).border_subtitle = Text(f"⚠ {message}")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._load_preview()

    def _load_preview(self) -> None:
        """Fetch the highlighted memory's links for the preview pane."""
        hit = self.results.current_hit
        if hit is None:
            self._show_preview(None)
            return
        if self.preview is not None and self.preview.memory == hit.memory:
            self._render_preview()
            return
        memory = hit.memory

        def job(engine: Engine) -> Preview:
            outgoing, incoming = engine.neighbours(memory.id)
            return Preview(memory, outgoing, incoming)

        engine_call(self, job, self._show_preview, group="preview")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open_graph()

    def _show_preview(self, preview: Preview | None) -> None:
        self.preview = preview
        self._render_preview()

    def _render_preview(self) -> None:
        pane = self.query_one("#preview", Static)
        hit = self.results.current_hit
        if self.preview is None or hit is None or hit.memory.id != self.preview.memory.id:
            pane.update(Text(""))
            return
        body = Text()
        if self.show_why:
            body.append_text(why_text(hit))
            body.append("\n")
        body.append_text(memory_detail(self.preview.memory, self.now()))
        body.append_text(links_text(self.preview.outgoing, self.preview.incoming))
        pane.update(body)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open_graph", "edit", "delete", "toggle_why"):
            return True if self.results.current_hit is not None else None
        return True

    def action_move(self, delta: int) -> None:
        """Move the highlight while typing."""
        if delta > 0:
            self.results.action_cursor_down()
        else:
            self.results.action_cursor_up()

    def action_focus_query(self) -> None:
        """Put the cursor back in the search box."""
        self.query_one("#query", Input).focus()

    def action_back(self) -> None:
        """Escape: from the list back to the box; in the box, clear the query."""
        query = self.query_one("#query", Input)
        if not query.has_focus:
            query.focus()
        elif query.value:
            query.value = ""

    def action_toggle_why(self) -> None:
        """Show or hide why the highlighted memory matched."""
        self.show_why = not self.show_why
        self._render_preview()

    def action_open_graph(self) -> None:
        """Open the highlighted memory in the association graph."""
        hit = self.results.current_hit
        if hit is not None:
            self.journal.show_in_graph(hit.memory.id)

    def action_edit(self) -> None:
        """Edit the highlighted memory."""
        hit = self.results.current_hit
        if hit is not None:
            self.journal.edit_memory(hit.memory)

    def action_delete(self) -> None:
        """Delete the highlighted memory, after confirmation."""
        hit = self.results.current_hit
        if hit is not None:
            self.journal.delete_memory(hit.memory)

    @property
    def current_memory(self) -> Memory | None:
        """The memory the user is looking at (for app-wide actions)."""
        hit: Hit | None = self.results.current_hit
        return hit.memory if hit else None
