"""``ephemera migrate meili …``: move from MeiliSearch (import, compare, finish, status).

Heavy imports stay inside the command functions: ``ephemera --help`` imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

migrate_app = typer.Typer(
    name="migrate",
    help="Move to Ephemera from another search engine.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
meili_app = typer.Typer(
    name="meili",
    help="From MeiliSearch: import a dump or export, dual write, compare, cut over.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
migrate_app.add_typer(meili_app, name="meili")


def register(app: typer.Typer) -> None:
    """Add ``migrate meili`` and let new engines dual write / route reads when configured."""
    app.add_typer(migrate_app, name="migrate")
    from ..engine import core

    if _attach not in core.ENGINE_EXTENSIONS:
        core.ENGINE_EXTENSIONS.append(_attach)


def _attach(engine: Any) -> None:
    """Engine extension: dual write and read routing while ``[migration.meilisearch]`` is set."""
    from ..cli import State
    from ..migration.phases import attach

    attach(engine, config_path=State.config)


def _cli() -> Any:
    from .. import cli

    return cli


def _meili_config() -> Any:
    from ..migration.config import load_meili_config

    cli = _cli()
    return cli.guarded(lambda: load_meili_config(cli.State.config))


@meili_app.command("import")
def import_(
    path: Annotated[
        Path,
        typer.Argument(help="A .dump file, an NDJSON/JSON export, or a folder of saved pages."),
    ],
    field_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=TARGET (content, created_at, source, tags, importance, confidence, "
            "notes, keep); repeatable. Unset targets are guessed.",
        ),
    ] = None,
    show_preview: Annotated[
        bool, typer.Option("--preview", help="Show the mapping and a few documents; write nothing.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip bad documents instead of importing nothing.")
    ] = False,
    index: Annotated[
        str | None, typer.Option("--index", help="Index uid (a dump with several indexes).")
    ] = None,
    primary_key: Annotated[
        str | None, typer.Option("--primary-key", help="The documents' primary key field.")
    ] = None,
    vectors_model: Annotated[
        str | None,
        typer.Option("--vectors-model", help="Model that made the documents' _vectors."),
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="Which _vectors embedder to reuse.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import documents from a MeiliSearch dump or export. Re-running adds no duplicates."""
    from ..migration.importer import Importer, preview
    from ..migration.mapping import build_mapping, parse_map_options
    from ..migration.readers import read_source

    cli = _cli()
    config = _meili_config()
    now = cli.time.time()
    explicit = cli.guarded(
        lambda: {
            **parse_map_options(f"{k}={v}" for k, v in config.field_map.items()),
            **parse_map_options(field_map or ()),
        }
    )
    source = cli.guarded(
        lambda: read_source(
            path,
            index=index or config.index,
            primary_key=primary_key or config.primary_key,
            skip_bad=skip_bad or show_preview,
        )
    )
    fmap = cli.guarded(
        lambda: build_mapping([d.data for d in source.documents], explicit, source.primary_key)
    )
    if show_preview:
        data = preview(source, fmap, now)
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
        else:
            _print_preview(data)
        return
    with cli.engine_session() as engine:
        importer = Importer(
            engine,
            vectors_model=vectors_model or config.vectors_model,
            embedder_name=embedder,
        )
        with cli._progress(len(source.documents), "importing") as advance:
            importer.progress = advance
            report = importer.run(source, fmap, skip_bad=skip_bad, now=now)
        for message in report.invalid[:20]:
            cli.notice(f"skipped {message}")
        for message in report.notes:
            cli.notice(message)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        else:
            typer.echo(report.summary())
            if report.reembed_reasons:
                why = ", ".join(f"{n} {r}" for r, n in sorted(report.reembed_reasons.items()))
                typer.echo(f"re-embedded because: {why}")


def _print_preview(data: dict[str, Any]) -> None:
    typer.echo(
        f"{data['documents']} documents from a {data['source']} (index {data['index']}, "
        f"primary key {data['primary_key']!r})"
    )
    typer.echo("mapping:")
    for target, info in data["mapping"].items():
        typer.echo(
            f"  {info['field']:>20} -> {target}" + ("  (guessed)" if info["guessed"] else "")
        )
    if data["kept_fields"]:
        kept = ", ".join(f"{k} ({n})" for k, n in sorted(data["kept_fields"].items()))
        typer.echo(f"kept as extra fields: {kept}")
    for sample in data["samples"]:
        typer.echo(f"- [{sample['primary_key']}] {' '.join(sample['content'].split())[:80]}")
        typer.echo(
            f"    created_at={sample['created_at']} source={sample['source']} "
            f"tags={','.join(sample['tags']) or '-'} importance={sample['importance']}"
        )
    for message in data["bad_lines"] + data["problems"]:
        typer.echo(f"problem: {message}")
    for message in data["notes"]:
        typer.echo(f"note: {message}")
    typer.echo("nothing written (--preview)")
