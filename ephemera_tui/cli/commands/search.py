"""``ephemera search``: hybrid search from the shell, one query or a file of them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...engine.domain import check_text
from ...engine.errors import EphemeraError
from ..context import fail, guarded, journal_session, notice
from ..output import json_text, printable

if TYPE_CHECKING:
    from ...engine.api import Journal


def _print_hits(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json_text([h.to_dict() for h in result.hits]))
        return
    from ...engine.dates import safe_local_datetime

    for hit in result.hits:
        memory = hit.memory
        when = safe_local_datetime(memory.created_at).strftime("%Y-%m-%d %H:%M")
        tags = " " + printable(" ".join("#" + t for t in memory.tags)) if memory.tags else ""
        first = " ".join(memory.content.split())
        if len(first) > 100:
            first = first[:99] + "…"
        source = printable(memory.source)
        typer.echo(f"{memory.id}  {when}  {source}  i{memory.importance}{tags}")
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
    if not 1 <= limit <= 10_000:
        fail(f"--limit must be from 1 to 10,000, got {limit}")
    with journal_session(ctx) as engine:
        if queries is not None:
            _search_file(engine, queries, limit)
            return
        assert query is not None
        guarded(lambda: check_text("query", query))  # bytes that are not UTF-8 in argv
        result = engine.search(query, limit=limit)
        for message in result.notices:  # a filter left out is among them; the rest still ran
            notice(printable(message))
        _print_hits(result, as_json)


def _search_file(engine: Journal, path: Path, limit: int) -> None:
    """One JSON line per query line. A line that cannot run gets ``{"line", "query", "error"}``
    instead of its hits and the batch goes on; the exit status is then 1. Filters left out
    of a line are said on stderr with the file and line."""
    from ...engine.query import parse_query

    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}")
    failed = 0
    for lineno, chunk in enumerate(raw.splitlines(), start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            failed += 1
            error = {"line": lineno, "query": None, "error": "not valid UTF-8"}
            typer.echo(json.dumps(error))
            continue
        if not line.strip():
            continue
        try:
            result = engine.search(line, limit=limit)
        except EphemeraError as exc:
            failed += 1
            error = {"line": lineno, "query": line, "error": str(exc)}
            typer.echo(json_text(error))
            continue
        for problem in parse_query(line, time.time()).problems:
            notice(printable(f"{path}:{lineno}: {problem}"))
        typer.echo(json_text([h.to_dict() for h in result.hits]))
    if failed:
        fail(f"{path}: {failed} of the queries could not run (their lines carry an error)")


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("search")(search)
