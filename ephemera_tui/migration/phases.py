"""Which migration phase is active, the cut-over, and attaching to new engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import load_meili_config


def attach(engine: Any, config_path: Path | None = None) -> None:
    """Give a new engine the dual writer and read router while a server is configured."""
    config = load_meili_config(config_path)
    if not config.live:
        return
    from .live import install

    install(engine, config)
