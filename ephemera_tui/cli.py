"""The ``ephemera`` command line: a thin shell over the engine, scriptable with ``--json``.

Run with no command to open the app. Settings come from flags, then ``EPHEMERA_*`` variables,
then the config file, then defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from .engine.config import Settings, load_settings
from .engine.errors import EphemeraError, ValidationError

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

T = TypeVar("T")


class State:
    """Global options, resolved into Settings on first use."""

    overrides: dict[str, Any] = {}
    config: Path | None = None
    _settings: Settings | None = None

    @classmethod
    def settings(cls) -> Settings:
        if cls._settings is None:
            cls._settings = load_settings(cls.overrides, config_path=cls.config)
        return cls._settings


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"ephemera: error: {message}", err=True)
    raise typer.Exit(code)


def notice(message: str) -> None:
    typer.echo(f"ephemera: {message}", err=True)


@contextmanager
def engine_session() -> Iterator[Any]:
    """Open the engine for one command; turn engine errors into one line and exit 1."""
    from .engine.core import Engine

    engine = None
    try:
        engine = Engine(State.settings())
        yield engine
    except EphemeraError as exc:
        fail(str(exc))
    finally:
        if engine is not None:
            engine.close()


def guarded(func: Callable[[], T]) -> T:
    try:
        return func()
    except EphemeraError as exc:
        fail(str(exc))


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
    State.overrides = {
        "data_dir": data_dir,
        "database_url": database_url,
        "qdrant_url": qdrant_url,
    }
    State.config = config
    State._settings = None
    if ctx.invoked_subcommand is None:
        settings = guarded(State.settings)
        from .app import run_app

        run_app(settings)


def _read_content(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    return text


def _when(value: str | None) -> int | None:
    if value is None:
        return None
    from .engine.query import parse_timestamp

    return guarded(lambda: parse_timestamp(value, time.time(), "--at"))


@app.command()
def add(
    text: Annotated[str, typer.Argument(help="The memory's text, or - to read it from stdin.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).")
    ] = None,
    source: Annotated[str, typer.Option("--source", "-s", help="Where it came from.")] = "note",
    importance: Annotated[int, typer.Option("--importance", "-i", help="0-255.")] = 128,
    confidence: Annotated[int, typer.Option("--confidence", "-c", help="0-255.")] = 128,
    at: Annotated[
        str | None, typer.Option("--at", help="When it happened: ISO date, Unix time, 'yesterday'…")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", "-n", help="Free-form notes.")] = None,
    link: Annotated[
        list[int] | None, typer.Option("--link", "-l", help="Linked memory id.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the memory as JSON.")] = False,
) -> None:
    """Record a memory and print its id."""
    from .engine.domain import Draft

    content = _read_content(text)
    draft = guarded(
        lambda: Draft(
            content=content,
            created_at=_when(at),
            source=source,
            importance=importance,
            confidence=confidence,
            tags=tuple(tag or ()),
            notes=note,
            associations=tuple(link or ()),
        )
    )
    with engine_session() as engine:
        for target in draft.associations:
            engine.get(target)
        memory = engine.add(draft)
        if engine.vector_status != "ok":
            notice(f"saved; semantic indexing deferred ({engine.vector_status})")
        typer.echo(json.dumps(memory.to_dict(), ensure_ascii=False) if as_json else str(memory.id))


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
        typer.echo(f"    {_printable(first)}")
    if not result.hits:
        typer.echo("no matches")


def _printable(text: str) -> str:
    """Drop control characters so stored text cannot drive the terminal."""
    return "".join(ch if ch.isprintable() or ch in "\t" else " " for ch in text)


@app.command()
def search(
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
    with engine_session() as engine:
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


@app.command()
def show(
    memory_id: Annotated[int, typer.Argument(help="Memory id.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show one memory in full, with its links."""
    from datetime import datetime

    with engine_session() as engine:
        memory = engine.get(memory_id)
        if as_json:
            typer.echo(json.dumps(memory.to_dict(), ensure_ascii=False))
            return
        outgoing, incoming = engine.neighbours(memory_id)
        when = datetime.fromtimestamp(memory.created_at).strftime("%Y-%m-%d %H:%M")
        recorded = datetime.fromtimestamp(memory.id / 1000).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"id:         {memory.id} (recorded {recorded})")
        typer.echo(f"happened:   {when}")
        typer.echo(f"source:     {memory.source}")
        typer.echo(f"importance: {memory.importance}   confidence: {memory.confidence}")
        typer.echo(f"tags:       {', '.join(memory.tags) or '-'}")
        typer.echo("")
        typer.echo(_printable(memory.content) if "\n" not in memory.content else memory.content)
        if memory.notes:
            typer.echo("\nnotes:\n" + memory.notes)
        for label, group in (("links to", outgoing), ("linked from", incoming)):
            for other in group:
                snippet = " ".join(other.content.split())[:60]
                typer.echo(f"{label}: {other.id}  {_printable(snippet)}")


@app.command()
def edit(
    memory_id: Annotated[int, typer.Argument(help="Memory id.")],
    content: Annotated[
        str | None, typer.Option("--content", help="New text (- for stdin).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Replace tags (repeatable).")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    importance: Annotated[int | None, typer.Option("--importance", "-i")] = None,
    confidence: Annotated[int | None, typer.Option("--confidence", "-c")] = None,
    at: Annotated[str | None, typer.Option("--at", help="When it happened.")] = None,
    note: Annotated[str | None, typer.Option("--note", "-n", help="Replace the notes.")] = None,
) -> None:
    """Change a memory. With no options, open it in $EDITOR."""
    from .engine.domain import Draft

    with engine_session() as engine:
        memory = engine.get(memory_id)
        draft = Draft.from_memory(memory)
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = _read_content(content)
        if tag is not None:
            changes["tags"] = tuple(tag)
        for name, value in (
            ("source", source),
            ("importance", importance),
            ("confidence", confidence),
            ("notes", note),
        ):
            if value is not None:
                changes[name] = value
        if at is not None:
            changes["created_at"] = _when(at)
        if not changes:
            changes["content"] = _edit_in_editor(memory.content)
            if changes["content"] == memory.content:
                notice("no change")
                return
        updated = engine.update(memory_id, draft.with_changes(**changes))
        typer.echo(str(updated.id))


def _edit_in_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".md", delete=False, encoding="utf-8") as handle:
        handle.write(text)
        path = Path(handle.name)
    try:
        result = subprocess.run([*editor.split(), str(path)], check=False)
        if result.returncode != 0:
            fail(f"editor {editor!r} exited with status {result.returncode}; nothing changed")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"editor {editor!r} not found (set $EDITOR)")
    finally:
        path.unlink(missing_ok=True)


@app.command()
def delete(
    memory_id: Annotated[int, typer.Argument(help="Memory id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask.")] = False,
) -> None:
    """Delete a memory (and links pointing at it)."""
    with engine_session() as engine:
        memory = engine.get(memory_id)
        if not yes and sys.stdin.isatty():
            snippet = " ".join(memory.content.split())[:60]
            if not typer.confirm(f"Delete {memory_id} ({_printable(snippet)})?"):
                raise typer.Exit(1)
        engine.delete(memory_id)
        typer.echo(f"deleted {memory_id}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSON Lines file (- for stdin).")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip invalid lines instead of importing nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Memories per batch.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import memories from JSON Lines (the export format). Re-running adds no duplicates."""
    from .engine import jsonl

    if str(file) == "-":
        with tempfile.NamedTemporaryFile(
            "w", suffix=".jsonl", delete=False, encoding="utf-8"
        ) as tmp:
            tmp.write(sys.stdin.read())
        file = Path(tmp.name)
    now = time.time()
    errors: list[str] = []
    total = guarded(lambda: jsonl.count_valid(file, now)) if not skip_bad else None
    with engine_session() as engine:
        rows = jsonl.read_jsonl(file, now, skip_bad=skip_bad, errors=errors)
        with _progress(total, "importing") as advance:
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


@contextmanager
def _progress(total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); silent when piped."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or markdown.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export every memory (jsonl re-imports losslessly)."""
    from .engine import jsonl

    if fmt not in ("jsonl", "markdown"):
        fail(f"unknown format {fmt!r} (jsonl or markdown)")
    writer = jsonl.write_jsonl if fmt == "jsonl" else jsonl.write_markdown
    with engine_session() as engine:
        memories = engine.store.iter_all()
        if fmt == "markdown":
            memories = iter(sorted(memories, key=lambda m: (m.created_at, m.id)))
        if output is None:
            writer(memories, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as handle:
                count = writer(memories, handle)
            notice(f"wrote {count} memories to {output}")


@app.command()
def sync() -> None:
    """Write pending vectors (the outbox) into the vector store."""
    with engine_session() as engine:
        report = engine.sync()
        typer.echo(
            f"indexed {report.upserted}, removed {report.deleted}, pending {report.remaining}"
        )
        if report.error:
            fail(report.error)


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Metrics in Prometheus text format.")
    ] = False,
) -> None:
    """Counts and health: memories, pending vectors, backends; latency, errors, cache, pool,
    memory, outbox and index quality recorded by every ephemera process (docs/monitoring.md)."""
    from .engine.metrics import collect, format_metrics, prometheus_text

    with engine_session() as engine:
        engine.vectors()
        if prometheus:
            typer.echo(prometheus_text(engine), nl=False)
            return
        data = engine.stats()
        data["metrics"] = collect(engine, series=0 if not as_json else 60)
        if as_json:
            typer.echo(json.dumps(data, default=str))
            return
        for key, value in data.items():
            if key != "metrics":
                typer.echo(f"{key:>20}: {value if value is not None else '-'}")
        for line in format_metrics(data["metrics"]):
            typer.echo(line)


@app.command()
def reembed(
    batch_size: Annotated[int, typer.Option("--batch-size", help="Memories per batch.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-embed every memory with the configured model into a new collection, then switch.

    The old collection keeps serving meanwhile; an interrupted run resumes where it stopped.
    """
    with engine_session() as engine:
        report = engine.reembed(
            (lambda n: typer.echo(f"  +{n}", err=True)) if not as_json else None,
            batch_size=batch_size,
        )
        if as_json:
            typer.echo(json.dumps(report.to_dict()))
            return
        resumed = "" if report.resumed_from is None else f" (resumed after {report.resumed_from})"
        typer.echo(f"re-embedded {report.embedded} into {report.collection}{resumed}")
        if report.switched:
            typer.echo(
                f"switched from {report.previous} to {report.collection}: caught up "
                f"{report.caught_up}, removed {report.removed}"
            )
        for note in report.notes:
            typer.echo(note)


@app.command()
def link(
    source_id: Annotated[int, typer.Argument(help="From this memory…")],
    target_id: Annotated[int, typer.Argument(help="…to this one.")],
    remove: Annotated[bool, typer.Option("--remove", help="Unlink instead.")] = False,
) -> None:
    """Link two memories (or unlink with --remove)."""
    with engine_session() as engine:
        if remove:
            engine.unlink(source_id, target_id)
            typer.echo(f"unlinked {source_id} {target_id}")
        else:
            engine.link(source_id, target_id)
            typer.echo(f"linked {source_id} -> {target_id}")


from .commands import register_all  # noqa: E402 - commands need `app` defined above

register_all(app)


def main() -> None:
    """Console-script entry point."""
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


if __name__ == "__main__":
    main()
