"""``ephemera report``: patterns in the journal as text, JSON, or a self-contained HTML page
(rendered by :mod:`ephemera_tui.presentation.report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..context import engine_session, fail, notice
from ..output import printable_block

if TYPE_CHECKING:
    from ...engine.observability.report import MetricsReport


# ---------------------------------------------------------------------------- command


def report(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, html or json.", case_sensitive=False)
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    period: Annotated[
        int, typer.Option("--period", help="Days compared for rising and falling tags.")
    ] = 30,
    system: Annotated[
        bool, typer.Option("--system/--no-system", help="Add latency and health figures.")
    ] = True,
) -> None:
    """Patterns in your memories: activity over time, tags rising and falling, sources,
    importance and confidence, busiest hours and weekdays (html: charts in one file)."""
    fmt = fmt.lower()
    if fmt not in ("text", "html", "json"):
        fail(f"unknown format {fmt!r}: text, html or json")
    if period < 1:
        fail("--period must be at least 1 day")
    from ...engine.analytics import patterns
    from ...presentation.report import render_html, render_text

    with engine_session(ctx) as engine:
        found = patterns(engine, period_days=period)
        metrics: MetricsReport | None = None
        if system:
            from ...engine.observability.report import collect

            metrics = collect(engine, series=0)
    if fmt == "json":
        data = found.to_dict()
        if metrics is not None:
            data["system"] = metrics.to_dict()
        text = json.dumps(data, default=str) + "\n"
    elif fmt == "html":
        text = render_html(found, metrics)
    else:
        text = render_text(found, metrics=metrics)
    text = printable_block(text)  # tags and sources are stored text: no escape sequence passes
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"{output}: cannot write: {exc.strerror or exc}")
        notice(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
