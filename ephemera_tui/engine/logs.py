"""The package's log: warnings and what the engine recovers from, written to
``<data_dir>/ephemera.log`` (rotated), never to the terminal, where a one-line error or
notice is all a user sees. ``EPHEMERA_DEBUG=1`` also logs debug lines."""

from __future__ import annotations

import logging
import os
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOGGER = "ephemera_tui"
MAX_BYTES = 1_000_000
BACKUPS = 2

_lock = threading.Lock()
_configured: set[Path] = set()


def configure_logging(path: Path) -> None:
    """Send the package's log records to ``path`` (once per path and process)."""
    with _lock:
        if path in _configured:
            return
        logger = logging.getLogger(LOGGER)
        # Records still propagate (a host's own handlers, pytest's caplog, see them); with our
        # file handler in the chain Python never falls back to printing them on stderr.
        logger.setLevel(logging.DEBUG if os.environ.get("EPHEMERA_DEBUG") else logging.INFO)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler: logging.Handler = RotatingFileHandler(
                path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
            )
        except OSError:
            handler = logging.NullHandler()  # an unwritable data dir is reported elsewhere
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
        )
        for old in [h for h in logger.handlers if getattr(h, "_ephemera", False)]:
            logger.removeHandler(old)  # one data dir's log per process: the newest wins
            old.close()
        handler._ephemera = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        _configured.clear()
        _configured.add(path)
