"""Keeping the vectors in step: ``sync``, ``stats``, ``reembed`` and ``optimize``."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...engine.errors import EphemeraError
from ..context import engine_session, fail, service_client

if TYPE_CHECKING:
    from ...engine.domain import EngineStats


def sync(ctx: typer.Context) -> None:
    """Write pending vectors (the outbox) into the vector store."""
    with engine_session(ctx) as engine:
        report = engine.sync()
        typer.echo(
            f"indexed {report.upserted}, removed {report.deleted}, pending {report.remaining}"
        )
        if report.error:
            fail(report.error)


def stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Metrics in Prometheus text format.")
    ] = False,
) -> None:
    """Counts and health: memories, pending vectors, backends; latency, errors, cache, pool,
    memory, outbox and index quality recorded by every ephemera process (docs/monitoring.md)."""
    from ...engine.observability.prometheus import prometheus_text
    from ...engine.observability.report import collect
    from ...presentation.metrics import format_metrics

    served = _served_stats(ctx)
    with engine_session(ctx) as engine:
        if served is None:
            # Nothing serves this data dir: open the vector store here to count its points.
            engine.vectors()
        if prometheus:
            typer.echo(prometheus_text(engine), nl=False)
            return
        data: dict[str, Any] = (served or engine.stats()).to_dict()
        metrics = collect(engine, series=0 if not as_json else 60)
        if as_json:
            data["metrics"] = metrics.to_dict()
            typer.echo(json.dumps(data, default=str))
            return
        for key, value in data.items():
            typer.echo(f"{key:>20}: {readable(value)}")
        for line in format_metrics(metrics):
            typer.echo(line)


def _served_stats(ctx: typer.Context) -> EngineStats | None:
    """The resident engine's own figures, when one serves this data dir: it holds the vector
    store and the model (so its point count and cache are the live ones), and asking it spares
    this process loading either (at 1M memories, opening the shard takes seconds)."""
    from ...service.client import ServiceUnavailable

    client = service_client(ctx)
    if client is None:
        return None
    with client:
        try:
            return client.stats()
        except (ServiceUnavailable, EphemeraError):
            return None  # it went away meanwhile: count here instead


def readable(value: object) -> str:
    """A stats value for people: ``-`` for nothing, nested mappings and records as
    ``hits 3, misses 1`` (never a Python dict or list), floats to four significant digits."""
    if value is None:
        return "-"
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple | set):
        return ", ".join(readable(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def reembed(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Memories per batch.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Re-embed every memory with the configured model into a new collection, then switch.

    The old collection keeps serving meanwhile; an interrupted run resumes where it stopped.
    """
    with engine_session(ctx) as engine:
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


def optimize(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Build the HNSW index of the embedded vector store (minutes at 100k memories).

    Run it while no app or worker holds the store; they search by keyword meanwhile
    elsewhere. Searches stay exact without it, just slower at large sizes.
    """
    from ...engine.vectors.index import build_index

    with engine_session(ctx) as engine:
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


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("sync")(sync)
    app.command("stats")(stats)
    app.command("reembed")(reembed)
    app.command("optimize")(optimize)
