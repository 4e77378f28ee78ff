"""A one-line question in a modal (jump to a date)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ..widgets.inputs import text_input


class PromptScreen(ModalScreen["str | None"]):
    """Ask for one line of text; dismiss with it (enter) or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(self, title: str, hint: str, placeholder: str = "", blink: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.placeholder = placeholder
        self.blink = blink

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield text_input(placeholder=self.placeholder, id="answer", blink=self.blink)
            yield Static(self.hint, id="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#dialog").border_title = self.title_text
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """Close without an answer."""
        self.dismiss(None)
