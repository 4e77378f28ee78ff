"""The memory changed elsewhere while it was being edited: show both texts and let the user
choose, instead of overwriting either."""

from __future__ import annotations

from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...engine.domain import Memory

Choice = Literal["mine", "theirs", "edit"]


class ConflictScreen(ModalScreen[Choice]):
    """Dismiss with ``mine`` (save over the newer version), ``theirs`` (keep the newer
    version; the typed text stays as a draft) or ``edit`` (back to the form)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "choose('mine')", "Save mine", id="conflict.mine"),
        Binding("t", "choose('theirs')", "Keep theirs", id="conflict.theirs"),
        Binding("e,escape", "choose('edit')", "Keep editing", id="conflict.edit"),
    ]

    def __init__(self, theirs: Memory, mine: str) -> None:
        super().__init__()
        self.theirs = theirs
        self.mine = mine

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                Text("This memory was changed elsewhere while you edited it.", style="bold"),
                id="question",
            )
            with VerticalScroll(id="versions"):
                yield Static(Text(f"Newer version (revision {self.theirs.revision})", "italic"))
                yield Static(Text(self.theirs.content), classes="version")
                yield Static(Text("Yours", "italic"))
                yield Static(Text(self.mine), classes="version")
            with Horizontal(id="buttons"):
                yield Button("Save mine (m)", variant="error", id="mine")
                yield Button("Keep theirs (t)", id="theirs")
                yield Button("Keep editing (e)", variant="primary", id="edit")

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = "Changed elsewhere"
        self.query_one("#edit", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(str(event.button.id))

    def action_choose(self, choice: str) -> None:
        """Answer with one of the three choices."""
        if choice in ("mine", "theirs", "edit"):
            self.dismiss(choice)  # type: ignore[arg-type]
