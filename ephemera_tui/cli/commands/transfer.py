"""Moving memories in and out: ``import`` (JSON Lines) and ``export`` (JSON Lines or Markdown)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from ..context import engine_session, fail, guarded, journal_session, notice
from ..output import plural, progress


def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON Lines file (- for stdin).")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip invalid lines instead of importing nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Memories per batch.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import memories from JSON Lines (the export format). Re-running adds no duplicates."""
    from ...engine import jsonl

    if str(file) == "-":
        with tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8"
        ) as tmp:
            tmp.write(sys.stdin.read())
        file = Path(tmp.name)
    now = time.time()
    errors: list[str] = []
    total = None if skip_bad else _check_all(file, now)
    with journal_session(ctx) as engine:
        rows = jsonl.read_jsonl(file, now, skip_bad=skip_bad, errors=errors)
        with progress(total, "importing") as advance:
            report = engine.import_drafts(rows, batch_size=batch_size, progress=advance)
        summary = {
            "imported": report.imported,
            "updated": report.updated,
            "skipped": report.skipped,
            "skip_reasons": report.reasons,
            "invalid": len(errors),
            "pending": engine.pending(),
        }
        for message in errors[:20]:
            notice(f"skipped {message}")
        if engine.vector_status != "ok":
            notice(f"semantic indexing deferred: {engine.vector_status}")
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            reasons = ", ".join(f"{n} {why}" for why, n in report.reasons.items())
            typer.echo(
                f"imported {report.imported}, updated {report.updated}, skipped {report.skipped}"
                + (f" ({reasons})" if reasons else "")
                + (f", invalid {len(errors)}" if errors else "")
            )


def _check_all(file: Path, now: float) -> int:
    """Validate every line before anything is written (a bad line writes nothing), with a
    progress bar from the start: reading dates in natural language takes a while."""
    from ...engine import jsonl

    try:
        with file.open("rb") as handle:
            lines = sum(1 for _ in handle)
    except OSError:
        lines = 0  # read_jsonl says what is wrong with the file
    valid = 0
    with progress(lines or None, f"checking {file.name}") as advance:

        def check() -> None:
            nonlocal valid
            for _ in jsonl.read_jsonl(file, now):
                valid += 1
                advance(1)

        guarded(check)
    return valid


def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or markdown.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export every memory (jsonl re-imports losslessly)."""
    from ...engine import jsonl

    if fmt not in ("jsonl", "markdown"):
        fail(f"unknown format {fmt!r} (jsonl or markdown)")
    writer = jsonl.write_jsonl if fmt == "jsonl" else jsonl.write_markdown
    with engine_session(ctx) as engine:
        memories = engine.iter_all()
        if fmt == "markdown":
            memories = iter(sorted(memories, key=lambda m: (m.created_at, m.id)))
        if output is None:
            writer(memories, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as handle:
                count = writer(memories, handle)
            notice(f"wrote {plural(count, 'memory')} to {output}")


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("import")(import_)
    app.command("export")(export)
