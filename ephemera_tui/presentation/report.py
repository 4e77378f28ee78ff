"""``ephemera report`` rendered: patterns in the journal as plain text with block-character
charts, or as one self-contained HTML page (style and SVG charts inline, no scripts, no
external assets: readable offline and attachable to an email)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .charts import bar, bucket_label, filled, local_time, sparkline
from .metrics import system_lines
from .numbers import count, percent, plural
from .svg import escape, svg_columns, svg_hbars

if TYPE_CHECKING:
    from ..engine.analytics import Patterns
    from ..engine.observability.report import MetricsReport

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Weekday labels, Monday first, in the order of ``Patterns.weekdays``."""


def choose_unit(p: Patterns) -> str:
    """Days for a short journal, weeks for a year or so, months beyond."""
    days = len(filled(p.activity["day"], "day", p.utc_offset))
    if days <= 62:
        return "day"
    if days <= 730:
        return "week"
    return "month"


# ---------------------------------------------------------------------------- text


def render_text(p: Patterns, width: int = 80, metrics: MetricsReport | None = None) -> str:
    """The report as plain text with block-character charts, lines at most ``width`` long;
    ``metrics`` adds a short "System" section."""
    out: list[str] = []

    def section(title: str) -> None:
        out.extend(["", title, "─" * min(width, len(title))])

    def bars(rows: list[tuple[str, int]], label_width: int = 14) -> None:
        peak = max((n for _, n in rows), default=0)
        total = sum(n for _, n in rows) or 1
        bar_width = max(10, width - label_width - 17)
        for label, n in rows:
            out.append(
                f"  {label[:label_width]:<{label_width}} {count(n):>7} {percent(n / total):>4} "
                f"{bar(n, peak, bar_width)}"
            )

    out.append("Ephemera — memory patterns")
    if not p.total:
        out.append("No memories yet.")
        return "\n".join(out) + "\n"
    first = local_time(p.first_at or 0, p.utc_offset)
    last = local_time(p.last_at or 0, p.utc_offset)
    out.append(
        f"{plural(p.total, 'memory')} from {first:%Y-%m-%d} to {last:%Y-%m-%d}, "
        f"on {plural(p.active_days, 'day')} ({p.per_active_day} per active day)"
    )
    out.append(
        f"longest streak {plural(p.longest_streak, 'day')}, "
        f"current streak {plural(p.current_streak, 'day')}"
    )
    change = p.recent_count - p.previous_count
    out.append(
        f"last {plural(p.period_days, 'day')}: {plural(p.recent_count, 'memory')} "
        f"({'+' if change >= 0 else ''}{count(change)} on the {p.period_days} days before)"
    )

    unit = choose_unit(p)
    series = filled(p.activity[unit], unit, p.utc_offset)
    section(f"Activity per {unit}")
    tail = series[-(width - 4) :]
    out.append("  " + sparkline([float(n) for _, n in tail]))
    if tail:
        out.append(
            f"  {bucket_label(tail[0][0], unit, p.utc_offset)} … "
            f"{bucket_label(tail[-1][0], unit, p.utc_offset)}, peak "
            f"{count(max(n for _, n in tail))} per {unit}"
        )
    recent_months = filled(p.activity["month"], "month", p.utc_offset)[-12:]
    if recent_months:
        section("Per month (last 12)")
        bars([(bucket_label(s, "month", p.utc_offset), n) for s, n in recent_months])

    section(f"Tags: last {p.period_days} days against the {p.period_days} before")
    if not p.rising and not p.falling:
        out.append("  no change")
    for trend in p.rising:
        out.append(f"  ▲ {trend.tag:<24} {trend.previous:>5} → {trend.recent:<5} (+{trend.change})")
    for trend in p.falling:
        out.append(f"  ▼ {trend.tag:<24} {trend.previous:>5} → {trend.recent:<5} ({trend.change})")
    if p.top_tags:
        section("Top tags")
        bars(p.top_tags, 20)

    section("Sources")
    bars(p.sources)
    section("Importance")
    bars(p.importance)
    section("Confidence")
    bars(p.confidence)

    section("Busiest hours (local time)")
    out.append("  " + sparkline([float(n) for n in p.hours]))
    out.append("  0     6     12    18   23")
    if p.busiest_hour is not None:
        out.append(f"  busiest: {p.busiest_hour:02d}:00–{p.busiest_hour:02d}:59")
    section("Weekdays")
    bars(list(zip(WEEKDAYS, p.weekdays, strict=True)), 4)

    if metrics is not None:
        section("System")
        out.extend("  " + line for line in system_lines(metrics))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- HTML

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
background:#fafaf7;color:#1d1d1f}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.lead{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #e3e3de;border-radius:8px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:22px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #e3e3de;border-radius:8px;padding:12px}
figcaption{font-weight:600;margin-bottom:6px}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#555}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#1a7f37}.down{color:#c0392b}
footer{color:#777;font-size:12px;margin-top:32px}
@media (prefers-color-scheme:dark){body{background:#161618;color:#eee}
.card,figure{background:#1f1f22;border-color:#333}svg text{fill:#aaa}.lead{color:#aaa}}
"""


def render_html(p: Patterns, metrics: MetricsReport | None = None) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external assets; ``metrics``
    adds a short "System" section."""
    generated = local_time(p.now, p.utc_offset)
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Ephemera — memory patterns</title><style>{CSS}</style></head><body><main>"
        "<h1>Memory patterns</h1>"
    )
    if not p.total:
        return head + '<p class="lead">No memories yet.</p></main></body></html>\n'
    first = local_time(p.first_at or 0, p.utc_offset)
    last = local_time(p.last_at or 0, p.utc_offset)
    body = [
        head,
        f'<p class="lead">{plural(p.total, "memory")} from {first:%Y-%m-%d} to {last:%Y-%m-%d}, '
        f"generated {generated:%Y-%m-%d %H:%M} (UTC{p.utc_offset / 3600:+g}).</p>",
        '<div class="cards">',
    ]
    cards = [
        ("memories", count(p.total)),
        ("active days", count(p.active_days)),
        ("per active day", p.per_active_day),
        ("longest streak", f"{p.longest_streak} d"),
        (f"last {p.period_days} days", count(p.recent_count)),
        ("busiest weekday", p.busiest_weekday or "-"),
        ("busiest hour", "-" if p.busiest_hour is None else f"{p.busiest_hour:02d}:00"),
    ]
    body.extend(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards)
    body.append("</div>")

    unit = choose_unit(p)
    series = filled(p.activity[unit], unit, p.utc_offset)[-120:]
    labelled = [(bucket_label(s, unit, p.utc_offset), n) for s, n in series]
    body.append(f"<h2>Activity per {unit}</h2><figure>")
    body.append(svg_columns(labelled, every=max(1, len(labelled) // 8), title=f"per {unit}"))
    body.append("</figure>")

    body.append('<h2>When</h2><div class="grid">')
    hours = [(f"{h:02d}", n) for h, n in enumerate(p.hours)]
    body.append("<figure><figcaption>Hour of day (local)</figcaption>")
    body.append(svg_columns(hours, width=420, height=160, every=3, title="hours"))
    body.append("</figure><figure><figcaption>Weekday</figcaption>")
    days = list(zip(WEEKDAYS, p.weekdays, strict=True))
    body.append(svg_columns(days, width=420, height=160, title="weekdays"))
    body.append("</figure></div>")

    body.append('<h2>What</h2><div class="grid">')
    body.append("<figure><figcaption>Sources</figcaption>")
    body.append(svg_hbars(p.sources[:12]))
    body.append("</figure><figure><figcaption>Top tags</figcaption>")
    body.append(svg_hbars(p.top_tags[:12], color="#12b886"))
    body.append("</figure><figure><figcaption>Importance</figcaption>")
    body.append(svg_columns(p.importance, width=420, height=160, color="#f59f00"))
    body.append("</figure><figure><figcaption>Confidence</figcaption>")
    body.append(svg_columns(p.confidence, width=420, height=160, color="#7950f2"))
    body.append("</figure></div>")

    body.append(
        f"<h2>Tags rising and falling</h2><p>Last {p.period_days} days against the "
        f"{p.period_days} before ({count(p.recent_count)} vs "
        f"{plural(p.previous_count, 'memory')}).</p>"
    )
    if p.rising or p.falling:
        body.append("<table><tr><th>tag</th><th>before</th><th>now</th><th>change</th></tr>")
        for trend in [*p.rising, *p.falling]:
            cls = "up" if trend.change > 0 else "down"
            arrow = "▲" if trend.change > 0 else "▼"
            body.append(
                f"<tr><td>{escape(trend.tag)}</td><td class=n>{count(trend.previous)}</td>"
                f"<td class=n>{count(trend.recent)}</td>"
                f'<td class="n {cls}">{arrow} {trend.change:+d}</td></tr>'
            )
        body.append("</table>")
    else:
        body.append("<p>No change.</p>")

    if metrics is not None:
        body.append("<h2>System</h2><ul>")
        body.extend(f"<li>{escape(line)}</li>" for line in system_lines(metrics))
        body.append("</ul>")
    body.append("<footer>ephemera report · self-contained page, no external assets</footer>")
    body.append("</main></body></html>\n")
    return "".join(body)
