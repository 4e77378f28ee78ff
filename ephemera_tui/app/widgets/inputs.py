"""Input fields whose cursor blink follows the app setting (frozen in snapshot tests)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


def text_input(value: str | None = None, *, blink: bool = True, **kwargs: Any) -> Input:
    """An Input; ``blink`` False stops the cursor blinking."""
    field = Input(value, **kwargs)
    field.cursor_blink = blink
    return field
