"""Input fields whose cursor blink follows the app setting (frozen in snapshot tests), and
that can take the suggestion they show (Tab in the forms, → as in any Input)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


class CompletingInput(Input):
    """An Input whose grey suggestion can be accepted by the screen's Tab key."""

    @property
    def suggestion(self) -> str:
        """The completion shown after the cursor ('' when none)."""
        suggestion = str(getattr(self, "_suggestion", "") or "")
        return suggestion if len(suggestion) > len(self.value) else ""

    def accept_suggestion(self) -> bool:
        """Take the shown suggestion (the cursor at the end); False when there is none."""
        suggestion = self.suggestion
        if not suggestion or not self.cursor_at_end:
            return False
        self.value = suggestion
        self.cursor_position = len(suggestion)
        return True


def text_input(value: str | None = None, *, blink: bool = True, **kwargs: Any) -> Input:
    """An Input; ``blink`` False stops the cursor blinking."""
    field = CompletingInput(value, **kwargs)
    field.cursor_blink = blink
    return field
