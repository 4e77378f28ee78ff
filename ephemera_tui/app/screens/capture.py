"""Capture and edit: a form for every field of a memory, saved through the engine.

The form validates by building a ``Draft`` (the engine's own rules) and saves in a worker; if
the engine refuses, the message is shown in the form and nothing typed is lost.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea

from ..format import absolute_time, memory_label
from ..widgets.inputs import text_input
from ..widgets.tags import TagSuggester
from ..workers import engine_call, error_message
from .confirm import ConfirmScreen

if TYPE_CHECKING:
    from ...engine import Draft, Engine, Memory
    from ..app import EphemeraApp


class CaptureScreen(ModalScreen["Memory | None"]):
    """New memory (``memory`` None) or edit one; dismisses with the saved memory, else None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Not a priority binding: it must reach the screen after the keys typed before it.
        Binding("ctrl+s", "save", "Save", id="capture.save"),
        Binding("escape", "cancel", "Cancel", id="capture.cancel"),
        Binding("ctrl+o", "external_editor", "$EDITOR", id="capture.editor"),
        Binding("ctrl+d", "delete", "Delete", priority=True, id="capture.delete"),
    ]

    def __init__(self, memory: Memory | None, tags: Callable[[], Sequence[str]]) -> None:
        super().__init__()
        self.memory = memory
        self._tags = tags

    @property
    def journal(self) -> EphemeraApp:
        """The app, typed."""
        return cast("EphemeraApp", self.app)

    def compose(self) -> ComposeResult:
        memory = self.memory
        blink = self.journal.blink
        with Vertical(id="form"):
            yield TextArea(
                memory.content if memory else "",
                id="content",
                soft_wrap=True,
                show_line_numbers=False,
                tab_behavior="focus",
            )
            with Horizontal(classes="row"):
                yield Label("Tags", classes="label")
                yield text_input(
                    " ".join(memory.tags) if memory else "",
                    placeholder="space separated; → completes",
                    suggester=TagSuggester(self._tags),
                    id="tags",
                    blink=blink,
                )
            with Horizontal(classes="row"):
                yield Label("Source", classes="label")
                yield text_input(memory.source if memory else "note", id="source", blink=blink)
                yield Label("When", classes="label")
                yield text_input(
                    absolute_time(memory.created_at) if memory else "",
                    placeholder="now",
                    id="when",
                    blink=blink,
                )
            with Horizontal(classes="row"):
                yield Label("Importance", classes="label")
                yield text_input(
                    _byte_text(memory.importance if memory else 128),
                    type="integer",
                    id="importance",
                    blink=blink,
                )
                yield Label("Confidence", classes="label")
                yield text_input(
                    _byte_text(memory.confidence if memory else 128),
                    type="integer",
                    id="confidence",
                    blink=blink,
                )
            with Horizontal(classes="row"):
                yield Label("Notes", classes="label")
                yield text_input(
                    memory.notes or "" if memory else "",
                    placeholder="optional",
                    id="notes",
                    blink=blink,
                )
            yield Static("", id="form-error")
            yield Static(
                Text("ctrl+s save · esc cancel · ctrl+o $EDITOR · tab next field", style="dim"),
                id="form-help",
            )

    def on_mount(self) -> None:
        form = self.query_one("#form")
        form.border_title = "Edit memory" if self.memory else "New memory"
        if self.memory:
            form.border_subtitle = Text(f"id {self.memory.id}")
        content = self.query_one("#content", TextArea)
        content.cursor_blink = self.journal.blink
        content.focus()
        content.move_cursor(content.document.end)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "delete":
            return self.memory is not None
        return True

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def build_draft(self) -> Draft:
        """The form as a Draft; raises the engine's ValidationError naming the bad field."""
        from ...engine import Draft, ValidationError
        from ...engine.query import parse_timestamp

        def number(field: str) -> int | None:
            raw = self._value(field)
            if not raw:
                return None
            try:
                return int(raw)
            except ValueError:
                raise ValidationError(f"{field} must be a whole number from 0 to 255") from None

        when = self._value("when")
        created_at: int | None = None
        if self.memory is not None and when in ("", absolute_time(self.memory.created_at)):
            created_at = self.memory.created_at  # untouched: keep the exact second
        elif when:
            created_at = parse_timestamp(when, self.journal.clock(), "when")
        tags = [t for t in self._value("tags").replace(",", " ").split() if t]
        return Draft(
            content=self.query_one("#content", TextArea).text,
            created_at=created_at,
            source=self._value("source") or "note",
            importance=number("importance"),
            confidence=number("confidence"),
            tags=tuple(tags),
            notes=self._value("notes") or None,
            associations=self.memory.associations if self.memory else (),
        )

    def show_error(self, message: str) -> None:
        """Show why the form cannot be saved, keeping everything typed."""
        self.query_one("#form-error", Static).update(Text(f"⚠ {message}", style="bold"))

    def action_save(self) -> None:
        """Validate, then save through the engine in a worker."""
        try:
            draft = self.build_draft()
        except Exception as exc:  # noqa: BLE001 - ValidationError and parse errors alike
            self.show_error(error_message(exc))
            return
        existing = self.memory

        def job(engine: Engine) -> Memory:
            if existing is None:
                return engine.add(draft)
            return engine.update(existing.id, draft)

        if engine_call(self, job, self.dismiss, group="save", failed=self.show_error) is None:
            self.show_error("the journal is still opening; try again in a moment")

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    @work(exclusive=True, group="delete")
    async def action_delete(self) -> None:
        """Delete this memory after a confirmation."""
        memory = self.memory
        if memory is None:
            return
        question = Text("Delete this memory for good?\n\n")
        question.append(memory_label(memory, 200), style="italic")
        if await self.app.push_screen_wait(ConfirmScreen("Delete", question)):
            self.journal.delete_memory(memory, confirmed=True)
            self.dismiss(None)

    def action_external_editor(self) -> None:
        """Edit the content in $VISUAL/$EDITOR (the app is suspended meanwhile)."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        area = self.query_one("#content", TextArea)
        with tempfile.NamedTemporaryFile(
            "w", suffix=".md", prefix="ephemera-", delete=False, encoding="utf-8"
        ) as handle:
            handle.write(area.text)
            path = Path(handle.name)
        try:
            with self.app.suspend():
                subprocess.run([*shlex.split(editor), str(path)], check=False)
            area.text = path.read_text(encoding="utf-8").rstrip("\n")
        except SuspendNotSupported:
            self.show_error("this terminal cannot hand over to an external editor")
        except OSError as exc:
            self.show_error(f"cannot run {editor}: {exc}")
        finally:
            path.unlink(missing_ok=True)


def _byte_text(value: int | None) -> str:
    return "" if value is None else str(value)
