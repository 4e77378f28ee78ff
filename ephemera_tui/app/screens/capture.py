"""Capture and edit: a form for every field of a memory, saved through the engine.

The form checks every field with the engine's own rules and lists every problem at once; the
When field shows what the typed date resolves to before anything is saved. Whatever is typed
is kept as a draft in the data dir until it is saved, so Escape (which asks first when there
are changes), a closed app or a dropped terminal never lose it: ctrl+n offers it back.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea

from ...engine.errors import ConflictError
from ..format import absolute_time, long_time, memory_label
from ..state import DraftStore, FormDraft
from ..widgets.inputs import CompletingInput, text_input
from ..widgets.tags import TagSuggester
from ..workers import engine_call, error_message
from .confirm import ConfirmScreen
from .conflict import ConflictScreen

if TYPE_CHECKING:
    from ...engine import Draft, Engine, Memory
    from ..app import EphemeraApp

WHEN_EXAMPLES = "10:30, yesterday 18:00, 3 days ago, 2024-05-01 10:30"
FIELDS = ("content", "tags", "source", "when", "importance", "confidence", "notes")


@dataclass(frozen=True, slots=True)
class WhenPreview:
    """What a typed date means: the moment, as shown to the user, and a warning if odd."""

    timestamp: int
    display: str
    warning: str | None = None


def resolve_when_text(text: str, now: float) -> WhenPreview:
    """Resolve the When field exactly as saving will. Uses the engine's ``resolve_when`` when
    it has one; otherwise ``parse_timestamp``, formatted here. Raises ValidationError naming
    'when'."""
    from ...engine import EphemeraError, query

    resolve = getattr(query, "resolve_when", None)
    try:
        if resolve is not None:
            found = resolve(text, now, "when")
            return WhenPreview(int(found.timestamp), str(found.display), found.warning)
        stamp = query.parse_timestamp(text, now, "when")
    except EphemeraError:
        if resolve is not None:
            raise  # the engine's message already says what would work
        raise _when_error(text) from None
    except Exception as exc:  # noqa: BLE001 - any other parse failure is the user's typo
        raise _when_error(text) from exc
    warning = f"{long_time(stamp)} is in the future" if stamp > now + 60 else None
    return WhenPreview(stamp, long_time(stamp), warning)


def _when_error(text: str) -> Exception:
    from ...engine import ValidationError

    return ValidationError(f"when: cannot understand {text.strip()!r} (try {WHEN_EXAMPLES})")


class FormErrors(Exception):
    """Every field the form cannot save, with the reason for each."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class CaptureScreen(ModalScreen["Memory | None"]):
    """New memory (``memory`` None) or edit one; dismisses with the saved memory, else None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # Not a priority binding: it must reach the screen after the keys typed before it.
        Binding("ctrl+s", "save", "Save", id="capture.save"),
        Binding("escape", "cancel", "Cancel", id="capture.cancel"),
        Binding("ctrl+o", "external_editor", "$EDITOR", id="capture.editor"),
        Binding("ctrl+d", "delete", "Delete", priority=True, id="capture.delete"),
        # Priority: handled as pressed, so the keys typed after Tab land in the next field.
        Binding("tab", "next_field", "Next field", show=False, priority=True, id="capture.tab"),
        Binding(
            "shift+tab",
            "previous_field",
            "Previous field",
            show=False,
            priority=True,
            id="capture.shift_tab",
        ),
    ]

    def __init__(
        self,
        memory: Memory | None,
        tags: Callable[[], Sequence[str]],
        *,
        draft: FormDraft | None = None,
        drafts: DraftStore | None = None,
    ) -> None:
        super().__init__()
        self.memory = memory
        self._tags = tags
        self.drafts = drafts
        self.original = self._initial(memory)
        self.start = draft if draft is not None else self.original
        self._wrote_draft = False
        self._when: WhenPreview | None = None

    @staticmethod
    def _initial(memory: Memory | None) -> FormDraft:
        if memory is None:
            return FormDraft(source="note", importance="128", confidence="128")
        return FormDraft(
            content=memory.content,
            tags=" ".join(memory.tags),
            source=memory.source,
            when=absolute_time(memory.created_at),
            importance=_byte_text(memory.importance),
            confidence=_byte_text(memory.confidence),
            notes=memory.notes or "",
            memory_id=memory.id,
        )

    @property
    def journal(self) -> EphemeraApp:
        """The app, typed."""
        return cast("EphemeraApp", self.app)

    def compose(self) -> ComposeResult:
        start = self.start
        blink = self.journal.blink
        with Vertical(id="form"):
            yield TextArea(
                start.content,
                id="content",
                soft_wrap=True,
                show_line_numbers=False,
                tab_behavior="focus",
            )
            with Horizontal(classes="row"):
                yield Label("Tags", classes="label")
                yield text_input(
                    start.tags,
                    placeholder="e.g. family trip",
                    suggester=TagSuggester(self._tags),
                    id="tags",
                    blink=blink,
                )
            yield Static(
                Text("space between tags · tab or → takes the suggestion", style="dim"),
                id="tags-hint",
                classes="hint",
            )
            with Horizontal(classes="row"):
                yield Label("Source", classes="label")
                yield text_input(start.source, id="source", blink=blink)
                yield Label("When", classes="label")
                yield text_input(start.when, placeholder="now", id="when", blink=blink)
            yield Static("", id="when-hint", classes="hint")
            with Horizontal(classes="row"):
                yield Label("Importance", classes="label")
                yield text_input(start.importance, type="integer", id="importance", blink=blink)
                yield Label("Confidence", classes="label")
                yield text_input(start.confidence, type="integer", id="confidence", blink=blink)
            with Horizontal(classes="row"):
                yield Label("Notes", classes="label")
                yield text_input(start.notes, placeholder="optional", id="notes", blink=blink)
            yield Static("", id="form-error")
            yield Static(
                Text("ctrl+s save · esc close · tab next field · ctrl+o $EDITOR", style="dim"),
                id="form-help",
            )

    def on_mount(self) -> None:
        form = self.query_one("#form")
        form.border_title = "Edit memory" if self.memory else "New memory"
        if self.memory:
            form.border_subtitle = Text(f"id {self.memory.id}")
        if self.start is not self.original:
            form.border_subtitle = Text("restored draft")
        content = self.query_one("#content", TextArea)
        content.cursor_blink = self.journal.blink
        content.focus()
        content.move_cursor(content.document.end)
        self._preview_when(self.start.when)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "delete":
            return self.memory is not None
        return True

    # ------------------------------------------------------------------ the typed state

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def form_state(self) -> FormDraft:
        """Everything typed, as text."""
        values = {f: self.query_one(f"#{f}", Input).value for f in FIELDS if f != "content"}
        return FormDraft(
            content=self.query_one("#content", TextArea).text,
            memory_id=self.memory.id if self.memory else None,
            saved_at=self.journal.clock(),
            **values,
        )

    @property
    def dirty(self) -> bool:
        """Whether anything differs from the memory as it was opened (or an empty form)."""
        return not self.form_state().same_fields(self.original)

    def _keep_draft(self) -> None:
        """Write the form to the draft file on every change; remove it when nothing is left."""
        if self.drafts is None or not self.is_mounted:
            return
        if self.dirty:
            self.drafts.save(self.form_state())
            self._wrote_draft = True
        elif self._wrote_draft:
            self.drafts.clear()
            self._wrote_draft = False

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self._keep_draft()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._keep_draft()
        if event.input.id == "when":
            self._preview_when(event.value)
        event.input.remove_class("-invalid")

    # ------------------------------------------------------------------ When, resolved

    def _preview_when(self, text: str) -> None:
        """Show what the When field means, from a worker (natural dates can be slow)."""
        now = self.journal.clock()
        hint = self.query_one("#when-hint", Static)
        if not text.strip():
            self._when = None
            line = Text("When ", style="bold")
            line.append(f"→ now, {long_time(now)}")
            line.append(" · also 10:30, 3 days ago, 2024-05-01", style="dim")
            hint.update(line)
            return

        def job() -> WhenPreview | str:
            try:
                return resolve_when_text(text, now)
            except Exception as exc:  # noqa: BLE001 - shown under the field
                return error_message(exc)

        def done(found: WhenPreview | str) -> None:
            if self.query_one("#when", Input).value != text:
                return  # typed on meanwhile
            line = Text("When ", style="bold")
            if isinstance(found, str):
                self._when = None
                line.append(f"? {found.removeprefix('when: ')}", style="dim")
            else:
                self._when = found
                if found.warning and found.display in found.warning:
                    line.append(f"→ ⚠ {found.warning}", style="bold reverse")
                else:
                    line.append(f"→ {found.display}")
                    if found.warning:
                        line.append(f"  ⚠ {found.warning}", style="bold reverse")
            hint.update(line)

        def work_() -> None:
            result = job()
            if self.is_mounted:
                self.app.call_from_thread(done, result)

        self.run_worker(work_, thread=True, exclusive=True, group="when-preview")

    # ------------------------------------------------------------------ validation

    def build_draft(self) -> Draft:
        """The form as a Draft; raises FormErrors naming every field that is wrong."""
        from ...engine import Draft, ValidationError

        errors: dict[str, str] = {}
        content = self.query_one("#content", TextArea).text

        def check(field: str, **value: object) -> None:
            try:
                Draft(content="x", **value)  # type: ignore[arg-type]
            except ValidationError as exc:
                errors.setdefault(field, str(exc))

        def number(field: str) -> int | None:
            raw = self._value(field)
            if not raw:
                return None
            try:
                value = int(raw)
            except ValueError:
                errors[field] = f"{field} must be a whole number from 0 to 255"
                return None
            check(field, **{field: value})
            return value

        if not content.strip():
            errors["content"] = "content must not be empty (type something above)"
        source = self._value("source") or "note"
        check("source", source=source)
        importance = number("importance")
        confidence = number("confidence")
        tags = tuple(t for t in self._value("tags").replace(",", " ").split() if t)
        check("tags", tags=tags)
        when = self._value("when")
        created_at: int | None = None
        if self.memory is not None and when in ("", absolute_time(self.memory.created_at)):
            created_at = self.memory.created_at  # untouched: keep the exact second
        elif when:
            try:
                created_at = resolve_when_text(when, self.journal.clock()).timestamp
            except ValidationError as exc:
                errors["when"] = str(exc)
        if errors:
            raise FormErrors(errors)
        return Draft(
            content=content,
            created_at=created_at,
            source=source,
            importance=importance,
            confidence=confidence,
            tags=tags,
            notes=self._value("notes") or None,
            associations=self.memory.associations if self.memory else (),
        )

    def show_error(self, message: str | Sequence[str]) -> None:
        """Show why the form cannot be saved (one line per problem), keeping everything typed."""
        lines = [message] if isinstance(message, str) else list(message)
        text = Text()
        for n, line in enumerate(lines):
            text.append(("\n" if n else "") + f"⚠ {line}", style="bold")
        self.query_one("#form-error", Static).update(text)

    # ------------------------------------------------------------------ actions

    def action_save(self) -> None:
        """Validate, then save through the engine in a worker."""
        for field in FIELDS:
            self.query_one(f"#{field}").remove_class("-invalid")
        try:
            draft = self.build_draft()
        except FormErrors as problems:
            for field in problems.errors:
                self.query_one(f"#{field}").add_class("-invalid")
            self.show_error(list(problems.errors.values()))
            return
        except Exception as exc:  # noqa: BLE001 - any other refusal, one line
            self.show_error(error_message(exc))
            return
        self._save(draft, None if self.memory is None else self.memory.revision)

    def _save(self, draft: Draft, revision: int | None) -> None:
        """Add, or update naming the revision the edit started from (a newer one written
        meanwhile by anyone is not overwritten: :meth:`_changed_elsewhere` asks)."""
        existing = self.memory

        def job(engine: Engine) -> Memory | ConflictError:
            if existing is None:
                return engine.add(draft)
            try:
                return engine.update(existing.id, draft, expected_revision=revision)
            except ConflictError as conflict:
                return conflict

        if engine_call(self, job, self._saved, group="save", failed=self.show_error) is None:
            self.show_error("the journal is still opening; try again in a moment")

    def _saved(self, result: Memory | ConflictError) -> None:
        if isinstance(result, ConflictError):
            self._changed_elsewhere(result)
            return
        if self.drafts is not None:
            self.drafts.clear()
        self.dismiss(result)

    @work(exclusive=True, group="conflict")
    async def _changed_elsewhere(self, conflict: ConflictError) -> None:
        """Show the newer text and the typed one; save over it, keep it, or go on editing."""
        from ...engine.domain import Memory as StoredMemory

        current = conflict.current
        if not isinstance(current, StoredMemory):
            self.show_error(str(conflict))
            return
        draft = self.build_draft()
        choice = await self.app.push_screen_wait(ConflictScreen(current, draft.content))
        if choice == "mine":
            self._save(draft, current.revision)
        elif choice == "theirs":
            self._keep_draft()  # what was typed stays offered on ctrl+n
            self.dismiss(current)
        else:
            self.memory = current  # the next save starts from the newer revision
            self.show_error(
                f"changed elsewhere (now revision {current.revision}); ctrl+s saves yours over it"
            )

    @work(exclusive=True, group="cancel")
    async def action_cancel(self) -> None:
        """Close without saving; with changes, ask first (the draft is kept either way)."""
        if self.dirty:
            question = Text("Close without saving?\n\n")
            question.append(
                "What you typed stays as a draft: ctrl+n offers it back.", style="italic"
            )
            if not await self.app.push_screen_wait(ConfirmScreen("Unsaved changes", question)):
                return
            self._keep_draft()
        self.dismiss(None)

    def action_next_field(self) -> None:
        """Tab: take the tag suggestion shown, else go to the next field."""
        focused = self.focused
        if isinstance(focused, CompletingInput) and focused.accept_suggestion():
            return
        self.focus_next()

    def action_previous_field(self) -> None:
        """Shift+Tab: the previous field."""
        self.focus_previous()

    @work(exclusive=True, group="delete")
    async def action_delete(self) -> None:
        """Delete this memory after a confirmation."""
        memory = self.memory
        if memory is None:
            return
        question = Text("Delete this memory for good?\n\n")
        question.append(memory_label(memory, 200), style="italic")
        if await self.app.push_screen_wait(ConfirmScreen("Delete", question)):
            if self.drafts is not None and self._wrote_draft:
                self.drafts.clear()
            self.journal.delete_memory(memory, confirmed=True)
            self.dismiss(None)

    def action_external_editor(self) -> None:
        """Edit the content in $VISUAL/$EDITOR (the app is suspended meanwhile)."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        area = self.query_one("#content", TextArea)
        with tempfile.NamedTemporaryFile(
            "w", suffix=".md", prefix="ephemera-", delete=False, encoding="utf-8"
        ) as handle:
            # A text file ends with a newline; without it editors append to the last line.
            handle.write(area.text.rstrip("\n") + "\n")
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


def draft_age(draft: FormDraft, now: float) -> str:
    """How long ago a draft was last typed into, in words."""
    from ...presentation.times import relative_time

    return relative_time(draft.saved_at or time.time(), now)


def _byte_text(value: int | None) -> str:
    return "" if value is None else str(value)
