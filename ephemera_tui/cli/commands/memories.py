"""Commands on single memories: ``add``, ``show``, ``edit``, ``delete`` and ``link``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ...engine.errors import ConflictError
from ..context import fail, guarded, journal_session, notice
from ..output import json_text, printable, printable_block


def _read_content(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    return text


def _ids(*ids: int) -> None:
    """Refuse ids no database can hold (above 2^63-1, or below 1) as unknown, in one line."""
    from ...engine.domain import MAX_ID

    for value in ids:
        if not 0 < value <= MAX_ID:
            fail(f"no memory with id {value}")


def _when(value: str | None) -> int | None:
    """``--at`` as Unix seconds; a moment in the future is kept and said."""
    if value is None:
        return None
    from ...engine.query import resolve_when

    resolved = guarded(lambda: resolve_when(value, time.time(), "--at"))
    if resolved.warning:
        notice(f"--at: {resolved.warning}")
    return resolved.timestamp


def add(
    ctx: typer.Context,
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
    from ...engine.domain import Draft

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
    with journal_session(ctx) as engine:
        for target in draft.associations:
            engine.get(target)
        memory = engine.add(draft)
        if engine.vector_status != "ok":
            notice(f"saved; semantic indexing deferred: {engine.vector_status}")
        typer.echo(json_text(memory.to_dict()) if as_json else str(memory.id))


def show(
    ctx: typer.Context,
    memory_id: Annotated[int, typer.Argument(help="Memory id.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show one memory in full, with its links."""
    from ...engine.dates import safe_local_datetime

    _ids(memory_id)
    with journal_session(ctx) as engine:
        memory = engine.get(memory_id)
        if as_json:
            typer.echo(json_text({**memory.to_dict(), "revision": memory.revision}))
            return
        outgoing, incoming = engine.neighbours(memory_id)
        when = safe_local_datetime(memory.created_at).strftime("%Y-%m-%d %H:%M")
        recorded = safe_local_datetime(memory.id // 1000).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"id:         {memory.id} (recorded {recorded})")
        typer.echo(f"happened:   {when}")
        typer.echo(f"source:     {printable(memory.source)}")
        typer.echo(f"importance: {memory.importance}   confidence: {memory.confidence}")
        typer.echo(f"tags:       {printable(', '.join(memory.tags)) or '-'}")
        typer.echo("")
        typer.echo(printable_block(memory.content))
        if memory.notes:
            typer.echo("\nnotes:\n" + printable_block(memory.notes))
        for label, group in (("links to", outgoing), ("linked from", incoming)):
            for other in group:
                snippet = " ".join(other.content.split())[:60]
                typer.echo(f"{label}: {other.id}  {printable(snippet)}")


def edit(
    ctx: typer.Context,
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
    revision: Annotated[
        int | None,
        typer.Option(
            "--revision",
            help="Refuse if the memory is no longer at this revision (see show --json).",
        ),
    ] = None,
) -> None:
    """Change a memory. With no options, open it in $EDITOR. Refuses, saving nothing, when
    someone else changed the memory meanwhile (since it was read, or since --revision)."""
    from ...engine.domain import Draft

    _ids(memory_id)
    with journal_session(ctx) as engine:
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
        started_from = memory.revision if revision is None else revision
        try:
            updated = engine.update(
                memory_id, draft.with_changes(**changes), expected_revision=started_from
            )
        except ConflictError as exc:
            if "content" in changes and changes["content"] != memory.content:
                notice(f"your text, not saved:\n{changes['content']}")
            fail(str(exc))
        typer.echo(str(updated.id))


def _edit_in_editor(text: str) -> str:
    """Edit ``text`` in ``$VISUAL`` or ``$EDITOR`` (a command line, split like a shell does).

    The file ends with a newline, as editors expect (else what is typed on the last line is
    glued to it, and some editors add one anyway); exactly that one is taken off again.
    """
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        command = shlex.split(editor)
    except ValueError as exc:
        fail(f"cannot run the editor {editor!r}: {exc}")
    if not command:
        fail("$VISUAL/$EDITOR is empty")
    with tempfile.NamedTemporaryFile(
        "w", suffix=".md", delete=False, encoding="utf-8", newline=""
    ) as handle:
        handle.write(text + "\n")
        path = Path(handle.name)
    try:
        result = subprocess.run([*command, str(path)], check=False)
        if result.returncode != 0:
            fail(f"editor {editor!r} exited with status {result.returncode}; nothing changed")
        with path.open(encoding="utf-8", newline="") as handle:
            edited = handle.read()  # line endings as written: an unchanged text compares equal
        for ending in ("\r\n", "\n"):
            if edited.endswith(ending):
                return edited[: -len(ending)]
        return edited
    except FileNotFoundError:
        fail(f"editor {command[0]!r} not found (set $VISUAL or $EDITOR)")
    except UnicodeDecodeError:
        fail("the edited text is not valid UTF-8; nothing changed")
    finally:
        path.unlink(missing_ok=True)


def delete(
    ctx: typer.Context,
    memory_id: Annotated[int, typer.Argument(help="Memory id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask.")] = False,
) -> None:
    """Delete a memory (and links pointing at it)."""
    _ids(memory_id)
    with journal_session(ctx) as engine:
        memory = engine.get(memory_id)
        if not yes and sys.stdin.isatty():
            snippet = " ".join(memory.content.split())[:60]
            if not typer.confirm(f"Delete {memory_id} ({printable(snippet)})?"):
                raise typer.Exit(1)
        engine.delete(memory_id)
        typer.echo(f"deleted {memory_id}")


def link(
    ctx: typer.Context,
    source_id: Annotated[int, typer.Argument(help="From this memory…")],
    target_id: Annotated[int, typer.Argument(help="…to this one.")],
    remove: Annotated[bool, typer.Option("--remove", help="Unlink instead.")] = False,
) -> None:
    """Link two memories (or unlink with --remove)."""
    _ids(source_id, target_id)
    with journal_session(ctx) as engine:
        if remove:
            first, second = engine.get(source_id), engine.get(target_id)  # unknown ids: refused
            if target_id not in first.associations and source_id not in second.associations:
                fail(f"memories {source_id} and {target_id} are not linked; nothing changed")
            engine.unlink(source_id, target_id)
            typer.echo(f"unlinked {source_id} {target_id}")
        else:
            engine.link(source_id, target_id)
            typer.echo(f"linked {source_id} -> {target_id}")


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("add")(add)
    app.command("show")(show)
    app.command("edit")(edit)
    app.command("delete")(delete)
    app.command("link")(link)
