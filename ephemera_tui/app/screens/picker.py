"""Pick a memory by searching for it (to link it, or from "on this day")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static

from ..widgets.inputs import text_input
from ..widgets.results import ResultList
from ..workers import engine_call

if TYPE_CHECKING:
    from ...engine import Engine, Hit, SearchResult
    from ..app import EphemeraApp


class PickerScreen(ModalScreen["int | None"]):
    """A list of memories, optionally searchable; dismisses with the chosen id or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("down", "move(1)", "Next", show=False, id="picker.next"),
        Binding("up", "move(-1)", "Previous", show=False, id="picker.previous"),
    ]

    def __init__(
        self,
        title: str,
        hits: Sequence[Hit] = (),
        *,
        searchable: bool = True,
        exclude: Sequence[int] = (),
        empty: str = "Nothing here.",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.initial = tuple(hits)
        self.searchable = searchable
        self.exclude = set(exclude)
        self.empty = empty
        self.query_text = ""

    @property
    def journal(self) -> EphemeraApp:
        """The app, typed."""
        return cast("EphemeraApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if self.searchable:
                yield text_input(
                    placeholder="type to find a memory",
                    id="pick-query",
                    blink=self.journal.blink,
                )
            yield ResultList(id="pick-results")
            yield Static(Text("enter choose · esc cancel", style="dim"), id="hint")

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = self.title_text
        if self.searchable:
            self.query_one(Input).focus()
            self._search("")
        else:
            self._show(self.initial)
            self.query_one(ResultList).focus()

    def _show(self, hits: Sequence[Hit]) -> None:
        results = self.query_one(ResultList)
        shown = [h for h in hits if h.memory.id not in self.exclude]
        if shown:
            results.show_hits(shown, self.journal.clock())
        else:
            results.empty_message(self.empty)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value
        self._search(event.value)

    def _search(self, query: str) -> None:
        def job(engine: Engine) -> SearchResult:
            return engine.search(query, limit=30)

        engine_call(self, job, self._found, group="pick")

    def _found(self, result: SearchResult) -> None:
        if result.query == self.query_text:
            self._show(result.hits)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._choose()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose()

    def _choose(self) -> None:
        hit = self.query_one(ResultList).current_hit
        if hit is not None:
            self.dismiss(hit.memory.id)

    def action_move(self, delta: int) -> None:
        """Move the highlight while typing."""
        results = self.query_one(ResultList)
        if delta > 0:
            results.action_cursor_down()
        else:
            results.action_cursor_up()

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
