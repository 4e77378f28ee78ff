"""``ephemera search``: hybrid search from the shell, one query or a file of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ...engine.errors import ValidationError
from ..context import engine_session, fail, notice
from ..output import printable


def _print_hits(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False))
        return
    from datetime import datetime

    for hit in result.hits:
        memory = hit.memory
        when = datetime.fromtimestamp(memory.created_at).strftime("%Y-%m-%d %H:%M")
        tags = " " + " ".join("#" + t for t in memory.tags) if memory.tags else ""
        first = " ".join(memory.content.split())
        if len(first) > 100:
            first = first[:99] + "…"
        typer.echo(f"{memory.id}  {when}  {memory.source}  i{memory.importance}{tags}")
        typer.echo(f"    {printable(first)}")
    if not result.hits:
        typer.echo("no matches")


def search(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help='Words, "phrases", tag:T source:S importance>=N after:/before:DATE.'),
    ] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", help="How many hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    queries: Annotated[
        Path | None,
        typer.Option("--queries", help="File with one query per line; prints one JSON line each."),
    ] = None,
) -> None:
    """Search by meaning and by word, with filters."""
    if (query is None) == (queries is None):
        fail("give a QUERY or --queries FILE")
    if limit < 1:
        fail("--limit must be at least 1")
    with engine_session(ctx) as engine:
        if queries is not None:
            try:
                lines = queries.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                fail(f"{queries}: cannot read: {exc.strerror or exc}")
            for lineno, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    result = engine.search(line, limit=limit)
                except ValidationError as exc:
                    fail(f"{queries}:{lineno}: {exc}")
                typer.echo(json.dumps([h.to_dict() for h in result.hits], ensure_ascii=False))
            return
        assert query is not None
        result = engine.search(query, limit=limit)
        for message in result.notices:
            notice(message)
        _print_hits(result, as_json)


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("search")(search)
