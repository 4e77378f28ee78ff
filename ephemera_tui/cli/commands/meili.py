"""``ephemera migrate meili …``: move from MeiliSearch (import, compare, finish, status).

Heavy imports stay inside the command functions: ``ephemera --help`` imports this module.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ...engine.config import default_config_path
from ..context import engine_session, fail, guarded, notice, settings
from ..output import progress

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


def _meili_config(ctx: typer.Context) -> Any:
    from ...migration.config import parse_table

    found = settings(ctx)
    where = found.config_path or default_config_path()
    return guarded(lambda: parse_table(dict(found.meilisearch), where))


@meili_app.command("import")
def import_(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(help="A .dump file (any version), an NDJSON/JSON export, or saved pages."),
    ],
    field_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=TARGET (content, created_at, source, tags, importance, confidence, "
            "notes, keep); repeatable, several fields for content or tags in order. Unset "
            "targets follow the index settings and the values.",
        ),
    ] = None,
    show_preview: Annotated[
        bool, typer.Option("--preview", help="Show the mapping and a few documents; write nothing.")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip bad documents instead of importing nothing.")
    ] = False,
    index: Annotated[
        list[str] | None,
        typer.Option(
            "--index",
            help="Index uid to import: repeatable or comma-separated, or 'all' (a dump's "
            "default). For an export: the uid to record it under.",
        ),
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
    """Import documents from a MeiliSearch dump (V1-V6) or export. Re-running adds no duplicates."""
    from ...migration.importer import Importer, preview
    from ...migration.mapping import build_mapping, parse_map_options
    from ...migration.readers import read_sources

    config = _meili_config(ctx)
    now = time.time()
    explicit = guarded(
        lambda: {
            **parse_map_options(f"{k}={v}" for k, v in config.field_map.items()),
            **parse_map_options(field_map or ()),
        }
    )
    sources = guarded(
        lambda: read_sources(
            path,
            index=index or ([config.index] if config.index else None),
            primary_key=primary_key or config.primary_key,
            skip_bad=skip_bad or show_preview,
        )
    )
    plans = guarded(
        lambda: [
            (
                s,
                build_mapping(
                    [d.data for d in s.documents], explicit, s.primary_key, s.settings, s.index_uid
                ),
            )
            for s in sources
        ]
    )
    several = len(plans) > 1
    for source, fmap in plans:  # which field went where, and why: --map changes it
        for line in fmap.explain:
            notice(f"{source.index_uid}: {line}" if several else line)
    if show_preview:
        previews = [preview(s, f, now) for s, f in plans]
        if as_json:
            out = dict(previews[0]) if not several else {}
            out["indexes"] = previews
            typer.echo(json.dumps(out, ensure_ascii=False))
        else:
            for shown in previews:
                _print_preview(shown)
        return
    with engine_session(ctx) as engine:
        importer = Importer(
            engine,
            vectors_model=vectors_model or config.vectors_model,
            embedder_name=embedder,
        )
        with progress(sum(len(s.documents) for s, _ in plans), "importing") as advance:
            importer.progress = advance
            reports = importer.run_many(plans, skip_bad=skip_bad, now=now)
        for report in reports:
            label = f"{report.index_uid}: " if several else ""
            for message in report.invalid[:20]:
                notice(f"skipped {message}")
            for message in report.notes:
                notice(label + message)
        if as_json:
            records = [r.to_dict() for r in reports]
            data: dict[str, Any] = dict(records[0]) if not several else {}
            if several:
                for name in (
                    "documents",
                    "imported",
                    "updated",
                    "skipped",
                    "reembedded",
                    "vectors_reused",
                    "vectors_deferred",
                ):
                    data[name] = sum(r[name] for r in records)
            data["indexes"] = records
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        for report in reports:
            label = f"{report.index_uid}: " if several else ""
            typer.echo(label + report.summary())
            if report.reembed_reasons:
                why = ", ".join(f"{n} {r}" for r, n in sorted(report.reembed_reasons.items()))
                typer.echo(f"{label}re-embedded because: {why}")
        if several:
            typer.echo(
                f"{len(reports)} indexes: imported {sum(r.imported for r in reports)}, updated "
                f"{sum(r.updated for r in reports)}, skipped {sum(r.skipped for r in reports)}"
            )


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


def _live_config(ctx: typer.Context) -> Any:
    config = _meili_config(ctx)
    if not config.live:
        fail(
            f"no MeiliSearch server configured: set url and index in [migration.meilisearch] "
            f"of {config.path}"
        )
    return config


def _read_queries(path: Path) -> list[tuple[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    queries = [
        (f"{path}:{n}", line.strip())
        for n, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not queries:
        fail(f"{path}: no queries (one per line)")
    return queries


@meili_app.command()
def compare(
    ctx: typer.Context,
    queries: Annotated[Path, typer.Option("--queries", help="One query per line.")],
    k: Annotated[int, typer.Option("-k", help="Compare the top K results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Run each query against MeiliSearch and Ephemera: overlap@k, rank agreement, latency."""
    from ...migration.live import MeiliServer
    from ...migration.live import compare as run_compare

    config = _live_config(ctx)
    lines = _read_queries(queries)
    with engine_session(ctx) as engine:
        rows, summary = run_compare(engine, MeiliServer(config), config, lines, k)
    if as_json:
        typer.echo(json.dumps({"queries": rows, "summary": summary}, ensure_ascii=False))
        return
    typer.echo(
        f"{'query':<32} {'overlap@' + str(k):>10} {'rank agr.':>9} {'ephemera':>10} {'meili':>10}"
    )
    for row in rows:
        query = row["query"] if len(row["query"]) <= 32 else row["query"][:31] + "…"
        if "error" in row:
            typer.echo(f"{query:<32} error: {row['error']}")
            continue
        agreement = "-" if row["rank_agreement"] is None else f"{row['rank_agreement']:.2f}"
        typer.echo(
            f"{query:<32} {row['overlap']:>10.2f} {agreement:>9} "
            f"{row['ephemera_ms']:>8.1f}ms {row['meili_ms']:>8.1f}ms"
        )
    typer.echo(
        f"mean overlap@{k} {_fmt(summary['overlap_mean'])}, mean rank agreement "
        f"{_fmt(summary['rank_agreement_mean'])}, p50 latency ephemera "
        f"{_fmt(summary['ephemera_ms_p50'])} ms / meilisearch {_fmt(summary['meili_ms_p50'])} ms"
        + (f", {summary['failed']} failed" if summary["failed"] else "")
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


@meili_app.command()
def sync(ctx: typer.Context) -> None:
    """Send the writes still queued for MeiliSearch now (dual writing retries them anyway)."""
    from ...migration.live import DualWriter

    config = _live_config(ctx)
    with engine_session(ctx) as engine:
        result = DualWriter(engine, config).drain(limit=10_000, force=True)
    typer.echo(f"sent {result['sent']}, still queued {result['remaining']}")
    if result["error"]:
        fail(result["error"])


@meili_app.command()
def finish(
    ctx: typer.Context,
    queries: Annotated[
        Path | None, typer.Option("--queries", help="Run a final comparison with these queries.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Finish even with writes still queued for MeiliSearch.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Cut over: stop dual writing, record the final comparison and the last dump's path."""
    from ...migration.phases import finish as run_finish
    from ...migration.phases import phase

    config = _meili_config(ctx)
    lines = _read_queries(queries) if queries is not None else None
    with engine_session(ctx) as engine:
        if phase(engine, config) == -1:
            fail(
                "nothing to finish: no MeiliSearch migration was imported or configured "
                "([migration.meilisearch] in the config file)"
            )
        record = run_finish(engine, config, queries=lines, force=force)
    if as_json:
        typer.echo(json.dumps(record, ensure_ascii=False))
        return
    typer.echo("migration finished: dual writing stopped, searches answered by Ephemera")
    final = record["final_comparison"]
    if final:
        typer.echo(
            f"final comparison: {final['queries']} queries, mean overlap@{final['k']} "
            f"{_fmt(final['overlap_mean'])}"
        )
    dump = record["last_dump"]
    if dump:
        typer.echo(
            f"last dump: {dump['path']}"
            + (f" (sha256 {dump['sha256'][:16]}…)" if dump.get("sha256") else " (missing)")
        )
    if record["abandoned_writes"]:
        notice(f"{record['abandoned_writes']} queued writes were never sent (--force)")
    if config.live:
        notice("you may now remove [migration.meilisearch] from the config file")


@meili_app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Which migration phase is active, and its figures."""
    from ...migration.phases import status as run_status

    config = _meili_config(ctx)
    with engine_session(ctx) as engine:
        data = run_status(engine, config)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, default=str))
        return
    typer.echo(f"phase {max(data['phase'], 0)}: {data['phase_name']}")
    if data["server"]:
        typer.echo(f"server: {data['server']} index {data['index']}, read mode {data['read_mode']}")
    typer.echo(f"documents mapped from MeiliSearch: {data['mapped_documents']}")
    last = data["last_import"]
    if last:
        typer.echo(
            f"last import: {last['path']}: imported {last['imported']}, updated {last['updated']}, "
            f"skipped {last['skipped']}, re-embedded {last['reembedded']}"
        )
    dual = data["dual_write"]
    queue = dual["queue"]
    typer.echo(
        f"dual writes: sent {dual.get('sent', 0)}, queued {queue['pending']}, failures "
        f"{dual.get('failures', 0)}"
        + (f" (last: {queue['last_error']})" if queue["last_error"] else "")
    )
    shadow = data["shadow"]
    if shadow["count"] or shadow["fallbacks"]:
        typer.echo(
            f"shadow comparisons: {shadow['compared']}, mean overlap "
            f"{_fmt(shadow['overlap_mean'])}, errors {shadow['errors']}, "
            f"fallbacks to MeiliSearch {shadow['fallbacks']}"
        )
    comparison = data["last_compare"]
    if comparison:
        typer.echo(
            f"last compare: {comparison['queries']} queries, mean overlap@{comparison['k']} "
            f"{_fmt(comparison['overlap_mean'])}, rank agreement "
            f"{_fmt(comparison['rank_agreement_mean'])}"
        )
    if data["finished"]:
        typer.echo(f"finished at {data['finished']['at']}")
