"""Terminal output helpers shared by the commands: safe text and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def printable(text: str) -> str:
    """Drop control characters so stored text cannot drive the terminal."""
    return "".join(ch if ch.isprintable() or ch in "\t" else " " for ch in text)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 memory``, ``2 memories``, ``1,451 memories`` (regular plurals need no ``nouns``)."""
    if nouns is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
        nouns = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count:,} {noun if count == 1 else nouns}"


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
