"""The status line: how many memories, how many wait for vector sync, and the search mode."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ..format import short_notice


class StatusLine(Static):
    """One line at the bottom of every screen, mirroring the App's reactives."""

    DEFAULT_CSS = """
    StatusLine { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    """

    memory_count: reactive[int | None] = reactive(None)
    """Memories stored (None while the engine opens)."""
    pending_count: reactive[int] = reactive(0)
    """Memories whose vectors are not yet written."""
    vector_state: reactive[str] = reactive("")
    """Empty when the vector store is ours, else why search is keyword-only."""

    def __init__(self, title: str = "") -> None:
        super().__init__()
        self.mode_title = title

    def on_mount(self) -> None:
        for name in ("memory_count", "pending_count", "vector_state"):
            self.watch(self.app, name, self._copier(name))

    def _copier(self, name: str):  # type: ignore[no-untyped-def]
        def copy(value: object) -> None:
            setattr(self, name, value)

        return copy

    def render(self) -> Text:
        if self.memory_count is None:
            return Text("opening the journal…")
        noun = "memory" if self.memory_count == 1 else "memories"
        line = Text(f"{self.memory_count:,} {noun}", no_wrap=True, overflow="ellipsis")
        if self.pending_count:
            line.append(f" · {self.pending_count:,} waiting for vector sync")
        else:
            line.append(" · all synced")
        if self.vector_state:
            line.append(" · " + short_notice(f"keyword only: {self.vector_state}"))
        width = self.content_region.width
        if self.mode_title and width:
            line.truncate(max(0, width - len(self.mode_title) - 2), overflow="ellipsis")
            line.pad_right(width - line.cell_len - len(self.mode_title))
            line.append(self.mode_title, style="bold")
        return line
