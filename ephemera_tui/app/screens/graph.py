"""Association graph: one memory in the centre, its links both ways, and suggestions by meaning.

Every neighbour line starts with a glyph and a word (→ links to, ← linked from, ≈ similar), so
the screen reads the same without colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from ..format import clean, memory_label, meta_line
from ..widgets.results import MemoryList
from ..widgets.rows import FixedRows
from ..widgets.status import StatusLine
from ..workers import engine_call
from .base import JournalScreen
from .picker import PickerScreen

if TYPE_CHECKING:
    from ...engine import Engine, Memory

SUGGESTIONS = 5
SIMILAR_FLOOR = 0.3
"""Below this similarity a suggestion is noise, however good it is relative to the others."""
SIMILAR_RELATIVE = 0.8
"""Suggest only memories at least this fraction as similar as the closest one."""
KIND_LABEL = {"out": "→ links to    ", "in": "← linked from ", "similar": "≈ suggested   "}


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One memory next to the focus: an explicit link either way, or a suggestion."""

    kind: str  # out | in | similar
    memory: Memory
    score: float | None = None


@dataclass(frozen=True, slots=True)
class GraphData:
    """The focused memory and everything around it."""

    focus: Memory
    neighbours: list[Neighbour] = field(default_factory=list)

    @property
    def has_suggestions(self) -> bool:
        return any(n.kind == "similar" for n in self.neighbours)


def worth_suggesting(scores: list[float]) -> int:
    """How many of these similarities (best first) to suggest: those close to the best one,
    none if even the best is weak."""
    if not scores or scores[0] < SIMILAR_FLOOR:
        return 0
    cutoff = max(SIMILAR_FLOOR, scores[0] * SIMILAR_RELATIVE)
    return sum(1 for score in scores if score >= cutoff)


def load_graph(engine: Engine, memory_id: int | None) -> GraphData | None:
    """Fetch a memory's links and its closest memories by meaning (not already linked)."""
    if memory_id is None:
        newest = engine.browse(limit=1)
        if not newest:
            return None
        memory_id = newest[0].id
    focus = engine.get(memory_id)
    outgoing, incoming = engine.neighbours(memory_id)
    linked = {m.id for m in outgoing} | {m.id for m in incoming}
    closest = engine.similar(memory_id, SUGGESTIONS + len(linked))
    similar = [h for h in closest if h.memory.id not in linked][:SUGGESTIONS]
    similar = similar[: worth_suggesting([h.score for h in similar])]
    neighbours = [Neighbour("out", m) for m in outgoing]
    neighbours += [Neighbour("in", m) for m in incoming]
    neighbours += [Neighbour("similar", h.memory, h.score) for h in similar]
    return GraphData(focus, neighbours)


class GraphScreen(JournalScreen):
    """Walk the links between memories; accept suggestions to make new links."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.mode('search')", "Search", show=False, id="graph.back_to_search"),
        Binding("enter", "follow", "Follow", priority=True, id="graph.follow"),
        Binding("l", "follow", "Follow", show=False, id="graph.follow_vim"),
        Binding("backspace", "back", "Back", id="graph.back"),
        Binding("h", "back", "Back", show=False, id="graph.back_vim"),
        Binding("a", "accept", "Accept", id="graph.accept"),
        Binding("plus", "link", "Link…", id="graph.link"),
        Binding("u", "unlink", "Unlink", id="graph.unlink"),
        Binding("e", "edit", "Edit", show=False, id="graph.edit"),
        Binding("d", "delete", "Delete", show=False, id="graph.delete"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: list[int] = []
        self.data: GraphData | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="breadcrumb")
        yield Static(id="focus")
        yield MemoryList(id="neighbours")
        yield StatusLine("Graph")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#focus").border_title = "Focus"
        self.query_one("#neighbours").border_title = "Around it"
        self.neighbour_list.focus()
        self.reload()

    @property
    def neighbour_list(self) -> MemoryList:
        """The list of links and suggestions."""
        return self.query_one("#neighbours", MemoryList)

    @property
    def current_memory(self) -> Memory | None:
        """The focused memory (for app-wide actions)."""
        return self.data.focus if self.data else None

    @property
    def selected(self) -> Neighbour | None:
        """The highlighted neighbour."""
        index = self.neighbour_list.highlighted
        if self.data is None or index is None or not 0 <= index < len(self.data.neighbours):
            return None
        return self.data.neighbours[index]

    def show(self, memory_id: int) -> None:
        """Put ``memory_id`` in the centre, starting a new path."""
        self.path = [memory_id]
        self.reload()

    def reload(self) -> None:
        memory_id = self.path[-1] if self.path else None

        def job(engine: Engine) -> GraphData | None:
            return load_graph(engine, memory_id)

        engine_call(self, job, self._loaded, group="graph", failed=self._failed)

    def _failed(self, message: str) -> None:
        if self.path and len(self.path) > 1:
            self.path.pop()
            self.notify(message, title="Cannot show that memory", severity="error", markup=False)
            self.reload()
            return
        self.path = []
        self.notify(message, title="Graph", severity="warning", markup=False)
        self.reload()

    def _loaded(self, data: GraphData | None) -> None:
        previous = self.selected
        self.data = data
        focus_panel = self.query_one("#focus", Static)
        listing = self.neighbour_list
        if data is None:
            focus_panel.update(Text("No memories yet. Press ctrl+n to capture one.", style="dim"))
            listing.clear_options()
            self._breadcrumb()
            return
        if not self.path:
            self.path = [data.focus.id]
        body = Text(clean(data.focus.content).strip(), overflow="ellipsis")
        body.append("\n")
        body.append_text(meta_line(data.focus, self.now()))
        focus_panel.update(body)
        options = [self._option(n) for n in data.neighbours]
        if not options:
            options.append(
                Option(Text("No links yet: press + to link one.", style="dim"), disabled=True)
            )
        if not data.has_suggestions:
            options.append(
                Option(Text("≈ nothing similar enough to suggest", style="dim"), disabled=True)
            )
        listing.set_options(options)
        if data.neighbours:
            keep = previous.memory.id if previous is not None else None
            listing.highlighted = next(
                (n for n, each in enumerate(data.neighbours) if each.memory.id == keep), 0
            )
        self._breadcrumb()
        self.refresh_bindings()

    def refresh_times(self) -> None:
        if self.data is not None:
            self._loaded(self.data)

    def _option(self, neighbour: Neighbour) -> Option:
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(KIND_LABEL[neighbour.kind], style="bold")
        head.append(memory_label(neighbour.memory, 200))
        meta = Text(" " * len(KIND_LABEL["out"]), no_wrap=True, overflow="ellipsis")
        if neighbour.kind == "similar" and neighbour.score is not None:
            meta.append(f"similar {neighbour.score:.2f} · ", style="italic")
        meta.append_text(meta_line(neighbour.memory, self.now()))
        prompt = FixedRows(self.neighbour_list, 2, lambda: (head, meta))
        return Option(prompt, id=f"{neighbour.kind}-{neighbour.memory.id}")

    def _breadcrumb(self) -> None:
        line = Text("Path: ", style="bold", no_wrap=True, overflow="ellipsis")
        if self.data is None:
            line.append("-")
        else:
            steps = len(self.path)
            if steps > 1:
                line.append(f"{steps - 1} step{'s' if steps > 2 else ''} back · ", style="dim")
            line.append(memory_label(self.data.focus, 60))
        self.query_one("#breadcrumb", Static).update(line)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        selected = self.selected
        if action == "follow":
            return True if selected else None
        if action == "back":
            return len(self.path) > 1
        if action == "accept":
            return selected is not None and selected.kind == "similar"
        if action == "unlink":
            return selected is not None and selected.kind != "similar"
        return True

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.refresh_bindings()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_follow()

    def action_follow(self) -> None:
        """Put the highlighted neighbour in the centre."""
        selected = self.selected
        if selected is not None:
            self.path.append(selected.memory.id)
            self.reload()

    def action_back(self) -> None:
        """Go back one step along the path."""
        if len(self.path) > 1:
            self.path.pop()
            self.reload()

    def action_accept(self) -> None:
        """Turn the highlighted suggestion into a link."""
        selected, data = self.selected, self.data
        if selected is None or data is None or selected.kind != "similar":
            return
        self._link(data.focus.id, selected.memory.id)

    def _link(self, source: int, target: int) -> None:
        def job(engine: Engine) -> None:
            engine.link(source, target)

        engine_call(self, job, self._changed, group="link", title="Cannot link")

    def _changed(self, _result: object) -> None:
        self.journal.data_changed()

    def action_unlink(self) -> None:
        """Remove the highlighted link (whichever way it was made)."""
        selected, data = self.selected, self.data
        if selected is None or data is None or selected.kind == "similar":
            return
        first, second = data.focus.id, selected.memory.id

        def job(engine: Engine) -> None:
            engine.unlink(first, second)

        engine_call(self, job, self._changed, group="link", title="Cannot unlink")

    @work(exclusive=True, group="link-picker")
    async def action_link(self) -> None:
        """Find another memory and link the focused one to it."""
        data = self.data
        if data is None:
            return
        linked = [n.memory.id for n in data.neighbours if n.kind != "similar"]
        chosen = await self.app.push_screen_wait(
            PickerScreen("Link to…", exclude=[data.focus.id, *linked])
        )
        if chosen is not None:
            self._link(data.focus.id, chosen)

    def action_edit(self) -> None:
        """Edit the focused memory."""
        if self.data is not None:
            self.journal.edit_memory(self.data.focus)

    def action_delete(self) -> None:
        """Delete the focused memory, after confirmation."""
        if self.data is not None:
            self.journal.delete_memory(self.data.focus)
