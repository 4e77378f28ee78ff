"""The upkeep health (:func:`ephemera_tui.engine.sync.worker.health`) in words: the lines under
``ephemera check`` and the HNSW note on the app's status screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .numbers import count
from .times import age, duration

if TYPE_CHECKING:
    from ..engine.sync.worker import Health


def index_note(health: Health) -> str | None:
    """The background HNSW build: running, or how the last one ended; None before any."""
    if health.index_building:
        return "building in the background"
    last = health.last_index_build
    if last is None:
        return None
    if last.error:
        return f"last build failed: {last.error}"
    if last.cancelled:
        return f"last build cancelled ({last.cancelled}); it starts again"
    took = "" if last.seconds is None else f" in {duration(last.seconds)}"
    return f"{count(last.indexed)} of {count(last.points)} vectors indexed by the last build{took}"


def health_lines(health: Health) -> list[str]:
    """One fact a line: pending vectors, mismatches, the last check and backup, errors, the
    index build."""
    oldest = health.outbox_oldest_age_s
    waiting = f" (oldest {duration(oldest)})" if health.pending and oldest is not None else ""
    checked = health.last_check_any
    backup = health.last_backup
    lines = [
        f"pending vectors: {count(health.pending)}{waiting}",
        f"mismatches: found {count(health.mismatches_found)}, "
        f"repaired {count(health.mismatches_repaired)}",
        f"last full check: {age(None if checked is None else checked.age_s)}",
        "last backup: "
        + ("never" if backup is None else f"{age(backup.age_s)} ({backup.path or '?'})"),
    ]
    if health.outbox_last_error:
        lines.append(f"last vector error: {health.outbox_last_error}")
    if health.last_backup_error is not None:
        lines.append(f"last backup error: {health.last_backup_error.error}")
    note = index_note(health)
    if note is not None:
        lines.append(f"HNSW index: {note}")
    return lines
