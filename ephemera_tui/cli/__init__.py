"""The ``ephemera`` command line: a thin shell over the engine, scriptable with ``--json``.

:mod:`.main` holds the Typer app and its global options; :mod:`.context` what every command
shares (settings in ``ctx.obj``, the engine session, one-line errors); :mod:`.commands` one
module per area. Command modules import downward only (context, output, engine).
"""

from .main import app, main

__all__ = ["app", "main"]
