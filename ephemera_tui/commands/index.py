"""``ephemera optimize``: build the embedded vector store's HNSW index in this process."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize)


def optimize(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Build the HNSW index of the embedded vector store (minutes at 100k memories).

    Run it while no app or worker holds the store; they search by keyword meanwhile
    elsewhere. Searches stay exact without it, just slower at large sizes.
    """
    from .. import cli
    from ..engine.index import build_index

    with cli.engine_session() as engine:
        typer.echo("building the HNSW index; this process is busy until it finishes", err=True)
        result = build_index(engine)
        if as_json:
            typer.echo(
                json.dumps(
                    {"before": result.before, "after": result.after, "seconds": result.seconds}
                )
            )
            return
        typer.echo(
            f"indexed {result.after['indexed']} of {result.after['points']} vectors "
            f"(before: {result.before['indexed']}) in {result.seconds}s, "
            f"{result.after['segments']} segments"
        )
