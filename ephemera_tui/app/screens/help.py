"""F1 / ?: the keys of the current screen, generated from its bindings (never a kept list)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import KeyAction


def key_table(actions: Sequence[KeyAction], display: dict[str, str]) -> Table:
    """A two-column table of keys and what they do, grouped by where they apply."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", no_wrap=True)
    table.add_column()
    group = None
    for action in actions:
        if action.group != group:
            if group is not None:
                table.add_row("", "")
            group = action.group
            table.add_row(Text(group, style="bold underline"), "")
        keys = " / ".join(display.get(k, k) for k in action.keys)
        table.add_row(Text(keys, style="bold"), Text(action.description))
    return table


class HelpScreen(ModalScreen[None]):
    """A scrollable list of the keys that work on the screen underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, title: str, actions: Sequence[KeyAction], display: dict[str, str]) -> None:
        super().__init__()
        self.title_text = title
        self.actions = actions
        self.key_names = display

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(key_table(self.actions, self.key_names), id="keys")
            yield Static(Text("esc closes · ctrl+p finds any command by name", style="dim"))

    def on_mount(self) -> None:
        dialog = self.query_one("#dialog")
        dialog.border_title = self.title_text
        dialog.focus()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
