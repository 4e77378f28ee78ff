"""A yes/no question in a modal dialog."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; dismiss with True (yes) or False (no, escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(
        self,
        title: str,
        question: Text | str,
        *,
        yes: str = "Yes",
        no: str = "No",
        safe_answer: bool = False,
    ) -> None:
        """``safe_answer`` is what Enter chooses: No unless yes is the harmless answer (e.g.
        continuing a draft, where No would drop it)."""
        super().__init__()
        self.title_text = title
        self.question = question if isinstance(question, Text) else Text(question)
        self.labels = (yes, no)
        self.safe_answer = safe_answer

    def compose(self) -> ComposeResult:
        yes, no = self.labels
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button(
                    f"{yes} (y)", variant="primary" if self.safe_answer else "error", id="yes"
                )
                yield Button(
                    f"{no} (n)", variant="default" if self.safe_answer else "primary", id="no"
                )

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = self.title_text
        self.query_one("#yes" if self.safe_answer else "#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Answer the question."""
        self.dismiss(yes)
