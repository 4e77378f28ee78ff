"""Free space, checked before the writes that cannot fail cleanly on a full disk.

The embedded vector store writes through memory-mapped files: on a full filesystem a page
that cannot be backed kills the process with SIGBUS, after the SQL commit it was indexing.
So the vector side, index builds and backups first ask :func:`ensure_free` whether the
filesystem holds at least :data:`MARGIN_BYTES` (plus what the job itself needs) and refuse
with a one-line :class:`DiskSpaceError` when it does not: a write then stays queued in the
outbox (SQL is committed and reported), a build or a backup is simply not started.

The margin can be changed with ``EPHEMERA_MIN_FREE_MB`` (0 turns the check off), for
filesystems that are small on purpose.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import EphemeraError

MARGIN_BYTES = 64 << 20
"""Free space kept in reserve below any vector write, index build or backup: 64 MiB."""


class DiskSpaceError(EphemeraError):
    """Too little free space to start a write safely."""


def margin_bytes() -> int:
    """The reserve in bytes: ``EPHEMERA_MIN_FREE_MB`` if set (a whole number), else 64 MiB."""
    raw = os.environ.get("EPHEMERA_MIN_FREE_MB", "").strip()
    if not raw:
        return MARGIN_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise DiskSpaceError(
            f"EPHEMERA_MIN_FREE_MB: expected a whole number of MiB, got {raw!r}"
        ) from None
    if value < 0:
        raise DiskSpaceError(f"EPHEMERA_MIN_FREE_MB: must be 0 or more, got {value}")
    return value << 20


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the filesystem it will be written on)."""
    current = path.absolute()
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Bytes available to this user on ``path``'s filesystem; None when it cannot be told."""
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return None


def ensure_free(path: Path, what: str, needed: int = 0) -> None:
    """Raise DiskSpaceError unless ``path``'s filesystem has ``needed`` bytes plus the margin.

    ``what`` names the refused job in the message ("vector write", "backup"...).
    """
    margin = margin_bytes()
    if margin == 0 and needed == 0:
        return
    free = free_bytes(path)
    if free is None:
        return  # cannot tell (an exotic filesystem): the write itself will say
    if free < needed + margin:
        raise DiskSpaceError(
            f"{what} refused: {_mib(free)} free on the filesystem of {path}, below the "
            f"{_mib(needed + margin)} it needs"
            + (f" ({_mib(needed)} plus a reserve of {_mib(margin)})" if needed else "")
            + "; free some space"
        )


def tree_bytes(path: Path) -> int:
    """Bytes in the files under ``path`` (0 if it does not exist); unreadable files count 0."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MiB" if size >= 1 << 20 else f"{size:,} bytes"
