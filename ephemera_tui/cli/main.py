"""The Typer app: global options into ``ctx.obj``, every command registered explicitly.

Run with no command to open the app. Settings come from flags, then ``EPHEMERA_*`` variables,
then the config file, then defaults. Command modules keep heavy imports inside their
functions: ``ephemera --help`` imports all of them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..engine.handover import quick_handover
from .commands import maintenance, meili, memories, ops, report, search, service, transfer
from .context import CliContext, guarded

app = typer.Typer(
    name="ephemera",
    help="Journal and recall memory fragments: hybrid semantic + keyword search\n"
    "over SQL + Qdrant.\n\n"
    "Run without a command to open the app.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the database and vectors live.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="sqlite:///PATH (default) or mysql+pymysql://USER@HOST/DB."
        ),
    ] = None,
    qdrant_url: Annotated[
        str | None,
        typer.Option(
            "--qdrant-url", help="Qdrant server URL (default: embedded store in the data dir)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: platform config dir).")
    ] = None,
) -> None:
    """Global options apply to every command."""
    # A journal is private: whatever this process creates (the data dir, the database and its
    # WAL, metrics, logs, vectors, backups) is for its owner only (0700 dirs, 0600 files).
    os.umask(os.umask(0o077) | 0o077)
    context = CliContext(
        overrides={"data_dir": data_dir, "database_url": database_url, "qdrant_url": qdrant_url},
        config_path=config,
    )
    ctx.obj = context
    if ctx.invoked_subcommand is None:
        settings = guarded(context.settings)
        from ..app import run_app

        run_app(settings)


for module in (memories, search, transfer, maintenance, ops, report, meili, service):
    module.register(app)


def main() -> None:
    """Console-script entry point: one line for any error, never a traceback."""
    quick_handover()  # this process is the program's own (engine/handover.py)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, never a traceback
        if os.environ.get("EPHEMERA_DEBUG"):
            raise
        typer.echo(
            f"ephemera: internal error: {type(exc).__name__}: {exc} "
            "(set EPHEMERA_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(2)
