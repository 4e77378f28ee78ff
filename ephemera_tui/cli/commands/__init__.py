"""Extra ``ephemera`` subcommands, one module per area, each exposing ``register(app)``.

Modules here must keep heavy imports inside their command functions: ``ephemera --help``
imports every one of them.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer


def register_all(app: typer.Typer) -> None:
    """Import every module of this package and let it add its commands."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
