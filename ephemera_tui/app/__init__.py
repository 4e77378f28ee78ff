"""The Textual app. ``run_app(settings)`` is what ``ephemera`` runs with no subcommand.

Importing this package loads Textual but not the engine's heavy libraries: the engine opens in
a worker after the first screen is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import EphemeraApp

__all__ = ["EphemeraApp", "run_app"]


def run_app(settings: Any) -> None:
    """Run the app until the user quits."""
    from .app import run_app as _run

    _run(settings)


def __getattr__(name: str) -> Any:
    if name == "EphemeraApp":
        from .app import EphemeraApp

        return EphemeraApp
    raise AttributeError(name)
