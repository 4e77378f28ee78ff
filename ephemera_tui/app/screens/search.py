"""The home screen: search as you type, a result list, a preview pane and "why this hit".

The list pages from the engine as the highlight nears its end, so every match is reachable;
the count above it is the engine's count of matches, not the length of the first page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList, Static
from textual.worker import get_current_worker

from ..format import links_text, memory_detail, short_notice, why_text
from ..widgets.inputs import CompletingInput, text_input
from ..widgets.results import ResultList
from ..widgets.status import StatusLine
from ..widgets.tags import QuerySuggester
from ..workers import engine_call
from .base import JournalScreen

if TYPE_CHECKING:
    from ...engine import Engine, Hit, Memory
    from ...engine.filters import SearchFilter

PAGE = 30
"""Hits fetched at a time (a tall terminal shows about 18); more are fetched as the highlight
nears the end. Every hit listed is laid out when the list is filled, on each keystroke."""
PLACEHOLDER = "Search: words, tag:x, after:yesterday · F1 keys · esc then q quits"


LINKS_DELAY_S = 0.15
"""How long the highlight rests on a hit before the preview looks up its links."""
QUICK_PASS_MS = 30.0
"""Show keyword hits first while the hybrid search runs only when the last hybrid search took
longer than this: a faster one is on screen before a first answer would have been drawn, and
each answer drawn costs the UI thread a full repaint of the list."""


@dataclass(frozen=True, slots=True)
class Found:
    """One answer for the list: the hits, how many there are in all, and how they were found."""

    query: str
    hits: tuple[Hit, ...]
    total: int | None  # None: not known yet (keyword paging goes on until it runs dry)
    exhausted: bool  # nothing more to fetch
    mode: str  # browse | hybrid | keyword
    notices: tuple[str, ...] = ()
    final: bool = True  # False for the quick keyword answer shown while the hybrid one runs


@dataclass(frozen=True, slots=True)
class Preview:
    """What the preview pane shows for one memory."""

    memory: Memory
    outgoing: list[Memory] = field(default_factory=list)
    incoming: list[Memory] = field(default_factory=list)
    loaded: bool = False  # links fetched


def count_text(found: Found, loaded: int) -> str:
    """'635 memories · newest first', '312 matches · hybrid', '50+ matches · keyword'."""
    if found.mode == "browse" and not found.query.strip():
        if not loaded:
            return "empty"
        total = found.total if found.total is not None else loaded
        return f"{total:,} {'memory' if total == 1 else 'memories'} · newest first"
    if found.total is not None:
        total, plus = found.total, ""
    else:
        total, plus = loaded, ("" if found.exhausted else "+")
    noun = "match" if total == 1 and not plus else "matches"
    how = "newest first" if found.mode == "browse" else found.mode
    return f"{total:,}{plus} {noun} · {how}"


class SearchScreen(JournalScreen):
    """Type to search; the list follows every keystroke, the preview follows the highlight."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: handled when pressed, so keys typed after Tab land in the next field.
        Binding("tab", "next_field", "Next field", show=False, priority=True, id="search.tab"),
        Binding(
            "shift+tab",
            "previous_field",
            "Previous field",
            show=False,
            priority=True,
            id="search.shift_tab",
        ),
        Binding("escape", "clear", "Clear", id="search.clear"),
        Binding("escape", "leave_box", "Leave box", id="search.leave"),
        Binding("escape", "focus_query", "Search box", show=False, id="search.back"),
        Binding("down", "move(1)", "Next", show=False, id="search.next"),
        Binding("up", "move(-1)", "Previous", show=False, id="search.previous"),
        Binding("slash", "focus_query", "Search box", show=False, id="search.focus"),
        # Priority so the footer shows it over the list's own Enter (which would also read).
        Binding("enter", "read", "Read", priority=True, id="search.read"),
        Binding("o", "open_graph", "Links", show=False, id="search.graph"),
        Binding("e", "edit", "Edit", id="search.edit"),
        Binding("d", "delete", "Delete", show=False, id="search.delete"),
        Binding("w", "toggle_why", "Why", id="search.why"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_why = False
        self.query_text = ""
        self.preview: Preview | None = None
        self.found: Found | None = None
        self._generation = 0
        self._paging = False
        self._hybrid_ms: float | None = None  # the last hybrid search's own time
        self._links_timer: Timer | None = None
        self._bindings_state: tuple[object, ...] = ()
        self._count_memo: tuple[tuple[SearchFilter, int], int] | None = None
        self._preview_body: Text | None = None  # what the preview pane shows now

    def compose(self) -> ComposeResult:
        yield text_input(
            placeholder=PLACEHOLDER,
            id="query",
            blink=self.journal.blink,
            suggester=QuerySuggester(lambda: self.journal.known_tags),
        )
        with Horizontal(id="search-body"):
            yield ResultList(id="results", now=self.now)
            with VerticalScroll(id="preview-pane"):
                yield Static(id="preview")
        yield StatusLine("Search")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_box.focus()
        self.query_one("#preview-pane").border_title = "Preview"
        self.reload()

    @property
    def results(self) -> ResultList:
        """The result list."""
        return self.query_one(ResultList)

    @property
    def query_box(self) -> Input:
        """The search box."""
        return self.query_one("#query", Input)

    # ------------------------------------------------------------------ searching

    def reload(self) -> None:
        self.run_search(self.query_text, keep=True, follow=self.take_followed())

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "query":
            return
        if event.value == "?":  # '?' alone is never a search: it is the help key
            event.input.value = ""
            self.journal.action_help()
            return
        self.query_text = event.value
        self._update_bindings()  # escape: clear, or leave the box
        self.run_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "query" and self.results.hits:
            self.results.focus()

    def run_search(self, query: str, keep: bool = False, follow: Memory | None = None) -> None:
        """Search in a worker; a newer query cancels the one still running."""
        limit = max(PAGE, len(self.results.hits)) if keep else PAGE

        def job(engine: Engine) -> Found:
            last = self._hybrid_ms
            if not keep and (last is None or last > QUICK_PASS_MS):
                # Keyword hits first (a few ms), then the hybrid ranking replaces them.
                quick = engine.search(query, limit=limit, keyword_only=True)
                if quick.mode == "keyword" and not get_current_worker().is_cancelled:
                    early = Found(
                        query, quick.hits, None, len(quick.hits) < limit, "keyword", final=False
                    )
                    self.app.call_from_thread(done, early)
            result = engine.search(query, limit=limit)
            if result.mode == "hybrid":
                self._hybrid_ms = result.timings_ms.get("total")
            exhausted = len(result.hits) < limit
            total: int | None = len(result.hits) if exhausted else None
            if not exhausted and result.mode in ("browse", "hybrid"):
                # Without words the filter decides; with meaning, every memory the filter
                # lets through is ranked, so the filter's count is how far the list goes.
                total = self._count(engine, engine.parse(query).filter)
            return Found(query, result.hits, total, exhausted, result.mode, result.notices)

        def done(found: Found) -> None:
            self._search_finished(found, keep, follow)

        engine_call(self, job, done, group="search", failed=self._search_failed)

    def _count(self, engine: Engine, flt: SearchFilter) -> int:
        """The filter's count, read again only when the filter or the app's ``data_version``
        (any write, here or elsewhere) changed: while words are typed the filter stays, and
        a count can cost more than the search."""
        key = (flt, self.journal.data_version)
        memo = self._count_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        total = engine.count(flt)
        self._count_memo = (key, total)
        return total

    def _search_finished(
        self, found: Found, keep: bool = False, follow: Memory | None = None
    ) -> None:
        if found.query != self.query_text:
            return
        self._generation += 1
        self._paging = False
        self.found = found
        previous = self.results.current_hit if keep else None
        wanted = follow.id if follow is not None else None
        if wanted is None or not any(h.memory.id == wanted for h in found.hits):
            wanted = previous.memory.id if previous is not None else None
        self.results.select_memory(found.hits, wanted)
        if not found.hits:
            message = (
                "Nothing yet: press ctrl+n to capture a memory."
                if not found.query.strip()
                else "No memories match."
            )
            self.results.empty_message(message)
        self._load_preview()
        self._show_count()
        self._update_bindings()

    def _update_bindings(self) -> None:
        """Refresh the footer's keys only when what :meth:`check_action` reads has changed:
        each refresh rebuilds the footer, which while typing would cost every keystroke
        two rebuilds on the UI thread."""
        box = self.query_box
        state = (self.focused is box, bool(box.value), self.current_memory is not None)
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    def _show_count(self) -> None:
        found = self.found
        if found is None:
            return
        subtitle = count_text(found, len(self.results.hits))
        notices = [short_notice(n) for n in found.notices]
        if any(n.startswith("keyword only:") for n in notices):
            subtitle = subtitle.removesuffix(" · keyword")
        self.query_box.border_subtitle = Text(" · ".join([subtitle, *notices]))

    def _search_failed(self, message: str) -> None:
        self.query_box.border_subtitle = Text(f"⚠ {short_notice(message)}")

    def on_result_list_near_end(self, _event: ResultList.NearEnd) -> None:
        self._more()

    def _more(self) -> None:
        """Fetch the next page of hits (browse by offset; re-rank with a larger limit)."""
        found = self.found
        if found is None or found.exhausted or not found.final or self._paging:
            return
        self._paging = True
        query, generation, offset = found.query, self._generation, len(self.results.hits)
        browse = found.mode == "browse"

        def job(engine: Engine) -> tuple[int, list[Hit], bool]:
            from ...engine import Hit

            if browse:
                page = engine.browse(engine.parse(query).filter, limit=PAGE, offset=offset)
                return generation, [Hit(m, 0.0) for m in page], len(page) < PAGE
            result = engine.search(query, limit=offset + PAGE)
            return generation, list(result.hits), len(result.hits) < offset + PAGE

        engine_call(self, job, self._more_found, group="search-more", failed=self._more_failed)

    def _more_found(self, page: tuple[int, list[Hit], bool]) -> None:
        generation, hits, exhausted = page
        self._paging = False
        found = self.found
        if generation != self._generation or found is None:
            return
        added = self.results.append_hits(hits)
        if exhausted or not added:
            total = found.total if found.mode == "browse" else len(self.results.hits)
            self.found = Found(found.query, found.hits, total, True, found.mode, found.notices)
        self._show_count()

    def _more_failed(self, message: str) -> None:
        self._paging = False
        self._search_failed(message)

    # ------------------------------------------------------------------ preview

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._load_preview()

    def _load_preview(self) -> None:
        """Show the highlighted memory at once; its links follow from the engine."""
        hit = self.results.current_hit
        if hit is None:
            self._show_preview(None)
            return
        if self.preview is not None and self.preview.memory == hit.memory:
            self._render_preview()
            return
        memory = hit.memory
        self._show_preview(Preview(memory))

        def job(engine: Engine) -> Preview:
            outgoing, incoming = engine.neighbours(memory.id)
            return Preview(memory, outgoing, incoming, loaded=True)

        def load() -> None:
            current = self.results.current_hit
            if current is not None and current.memory.id == memory.id:
                engine_call(self, job, self._links_loaded, group="preview")

        # The links wait until the highlight has rested a moment: finding the memories that
        # link to this one reads every row's links, and while a query is typed each
        # keystroke's first hit would otherwise start that read, competing with the search.
        if self._links_timer is not None:
            self._links_timer.stop()
        self._links_timer = self.set_timer(LINKS_DELAY_S, load)

    def _links_loaded(self, preview: Preview) -> None:
        if self.preview is not None and self.preview.memory.id == preview.memory.id:
            self._show_preview(preview)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_read()

    def _show_preview(self, preview: Preview | None) -> None:
        self.preview = preview
        self._render_preview()

    def _render_preview(self) -> None:
        hit = self.results.current_hit
        if self.preview is None or hit is None or hit.memory.id != self.preview.memory.id:
            self.preview = None
            self._paint_preview(Text(""))
            return
        body = Text()
        width = self.query_one("#preview-pane").content_region.width
        if self.show_why:
            found = self.found
            listed_by = found.query if found is not None and found.mode == "browse" else None
            body.append_text(why_text(hit, listed_by, width or None))
            body.append("\n")
        body.append_text(memory_detail(self.preview.memory, self.now(), width or None))
        body.append_text(links_text(self.preview.outgoing, self.preview.incoming, width or None))
        self._paint_preview(body)

    def _paint_preview(self, body: Text) -> None:
        """Update the pane only when its text changed: each update lays the whole screen out
        again, and while a query is typed the top hit (so the preview) mostly stays."""
        if body == self._preview_body:
            return
        self._preview_body = body
        self.query_one("#preview", Static).update(body)

    def refresh_times(self) -> None:
        self.results.refresh_times()
        self._render_preview()

    @property
    def current_memory(self) -> Memory | None:
        """The memory the preview shows: what e, d, enter and o act on."""
        return self.preview.memory if self.preview is not None else None

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        box = self.query_box
        # The screen's focus, not has_focus: that is False while the terminal window is in
        # the background, and the first key that brings it back must work all the same.
        in_box = self.focused is box
        if action == "read" and in_box:
            return False  # Enter in the box goes to the list
        if action in ("read", "open_graph", "edit", "delete", "toggle_why"):
            return True if self.current_memory is not None else None
        if action == "clear":
            return in_box and bool(box.value)
        if action == "leave_box":
            return in_box and not box.value
        if action == "focus_query":
            return not in_box
        return True

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    def on_descendant_blur(self) -> None:
        self.refresh_bindings()

    def action_next_field(self) -> None:
        """Tab: take the box's suggestion (a tag), else go to the next field."""
        focused = self.focused
        if isinstance(focused, CompletingInput) and focused.accept_suggestion():
            return
        self.focus_next()

    def action_previous_field(self) -> None:
        """Shift+Tab: the previous field."""
        self.focus_previous()

    def action_move(self, delta: int) -> None:
        """Move the highlight while typing."""
        if delta > 0:
            self.results.action_cursor_down()
        else:
            self.results.action_cursor_up()

    def action_focus_query(self) -> None:
        """Put the cursor back in the search box."""
        self.query_box.focus()

    def action_clear(self) -> None:
        """Escape in a box with text: clear it."""
        self.query_box.value = ""

    def action_leave_box(self) -> None:
        """Escape in an empty box: leave it, so single keys (q, ?, j, k) are keys again."""
        self.results.focus()

    def action_toggle_why(self) -> None:
        """Show or hide why the highlighted memory matched."""
        self.show_why = not self.show_why
        self._render_preview()

    def action_read(self) -> None:
        """Read the highlighted memory in full."""
        memory = self.current_memory
        if memory is not None:
            self.journal.read_memory(memory)

    def action_open_graph(self) -> None:
        """Open the highlighted memory in the association graph."""
        memory = self.current_memory
        if memory is not None:
            self.journal.show_in_graph(memory.id)

    def action_edit(self) -> None:
        """Edit the memory the preview shows."""
        memory = self.current_memory
        if memory is not None:
            self.journal.edit_memory(memory)

    def action_delete(self) -> None:
        """Delete the memory the preview shows, after confirmation."""
        memory = self.current_memory
        if memory is not None:
            self.journal.delete_memory(memory)
