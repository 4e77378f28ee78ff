"""Terminal output helpers shared by the commands: safe text, safe JSON and progress bars.

Stored text is the user's (or an import's): anything shown passes through :func:`printable`
(one line) or :func:`printable_block` (several lines), and JSON through :func:`json_text`, so
no escape sequence, OSC title change or bidirectional override reaches a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..engine.domain import escape_controls
from ..engine.jsonl import dumps


def printable(text: str) -> str:
    """One line of stored text, every control character (newlines too) shown as an escape."""
    return escape_controls(text)


def printable_block(text: str) -> str:
    """Several lines of stored text: newlines and tabs kept, other controls escaped."""
    return escape_controls(text, keep="\n\t")


def json_text(value: Any, **options: Any) -> str:
    """JSON for the terminal: text readable, the characters a terminal acts on (C1, bidi
    overrides) escaped as JSON allows (see :func:`ephemera_tui.engine.jsonl.dumps`)."""
    return dumps(value, **options)


@contextmanager
def progress(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); silent when piped."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
