"""Moving memories in and out: ``import`` (JSON Lines) and ``export`` (JSON Lines or Markdown)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ...engine.errors import EphemeraError
from ...presentation.numbers import plural
from ..context import engine_session, fail, guarded, journal_session, notice
from ..output import progress


def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON Lines file (- for stdin).")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip invalid lines instead of importing nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Memories per batch.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import memories from JSON Lines (the export format). Re-running adds no duplicates.

    Every line is checked before the first write, against everything a database would
    refuse (and links against the journal), so a bad line writes nothing, or with
    --skip-bad is skipped. Standard input is read as it streams, never copied to disk."""
    from ...engine import jsonl

    if batch_size < 1:
        fail("--batch-size must be at least 1")
    now = time.time()
    errors: list[str] = []
    survey = jsonl.Survey()
    from_stdin = str(file) == "-"
    name = "stdin" if from_stdin else str(file)
    held: list[jsonl.Record] = []
    if from_stdin:
        guarded(lambda: held.extend(_read_stdin(now, skip_bad, errors, survey)))
    else:
        _check_all(file, now, skip_bad, errors, survey)
    with journal_session(ctx) as engine:
        guarded(lambda: survey.resolve_links(name, lambda ids: set(engine.get_many(ids))))
        late = [m for line, m in sorted(survey.bad.items()) if m not in errors]
        if late and not skip_bad:
            fail(late[0])
        errors.extend(late)
        if from_stdin:
            rows: Any = ((r.draft, r.memory_id) for r in held if r.lineno not in survey.bad)
        else:
            rows = _valid_rows(file, now, frozenset(survey.bad), errors)
        written = 0

        def advance_count(n: int) -> None:
            nonlocal written
            written += n
            advance(n)

        with progress(survey.valid, "importing") as advance:
            try:
                report = engine.import_drafts(rows, batch_size=batch_size, progress=advance_count)
            except EphemeraError as exc:
                fail(
                    f"{exc}; {plural(written, 'line')} of {name} were written before it "
                    "(re-running the import writes the rest, without duplicates)"
                )
        pending = engine.pending()
        summary = {
            "imported": report.imported,
            "updated": report.updated,
            "skipped": report.skipped,
            "skip_reasons": report.reasons,
            "invalid": len(errors),
            "pending": pending,
        }
        for message in errors[:20]:
            notice(f"skipped {message}")
        if len(errors) > 20:
            notice(f"skipped {len(errors) - 20} more invalid lines")
        if engine.vector_status != "ok":
            notice(f"semantic indexing deferred: {engine.vector_status}")
        if pending:
            notice(
                f"{plural(pending, 'memory')} still wait for `ephemera sync` "
                "(not yet searchable by meaning)"
            )
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            reasons = ", ".join(f"{n} {why}" for why, n in report.reasons.items())
            typer.echo(
                f"imported {report.imported}, updated {report.updated}, skipped {report.skipped}"
                + (f" ({reasons})" if reasons else "")
                + (f", invalid {len(errors)}" if errors else "")
            )


def _read_stdin(now: float, skip_bad: bool, errors: list[str], survey: Any) -> Iterator[Any]:
    """Validated records of standard input, read as it streams (kept in memory until the
    links are resolved; never written to a temporary file)."""
    from ...engine import jsonl

    for record in jsonl.iter_records(
        sys.stdin.buffer, "stdin", now, skip_bad=skip_bad, errors=errors
    ):
        survey.add(record)
        yield record
    survey.bad.update(jsonl._bad_lines(errors))


def _valid_rows(file: Path, now: float, bad: frozenset[int], errors: list[str]) -> Iterator[Any]:
    """The second pass over a checked file: the good lines (a line that went bad since the
    check, as the file changed, is skipped and reported)."""
    from ...engine import jsonl

    with jsonl.open_input(file) as handle:
        for record in jsonl.iter_records(
            handle, str(file), now, skip_bad=True, errors=errors, skip_lines=bad
        ):
            yield record.draft, record.memory_id


def _check_all(file: Path, now: float, skip_bad: bool, errors: list[str], survey: Any) -> int:
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
            for _ in jsonl.read_jsonl(file, now, skip_bad, errors, survey=survey):
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
            try:
                with output.open("w", encoding="utf-8") as handle:
                    count = writer(memories, handle)
            except OSError as exc:
                fail(f"{output}: cannot write: {exc.strerror or exc}")
            notice(f"wrote {plural(count, 'memory')} to {output}")


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("import")(import_)
    app.command("export")(export)
