"""Charts as inline SVG for the self-contained HTML report: columns and horizontal bars,
every label escaped, a tooltip on every bar, no scripts and no external references."""

from __future__ import annotations

import html
from collections.abc import Sequence

from .numbers import count

ACCENT = "#4c6ef5"


def escape(text: object) -> str:
    """``text`` safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def _heights(values: Sequence[tuple[str, int]]) -> tuple[list[int], int]:
    """The values as bar heights (a negative count draws as none) and the peak (at least 1)."""
    heights = [max(0, value) for _, value in values]
    return heights, max(heights, default=0) or 1


def svg_columns(
    values: Sequence[tuple[str, int]],
    *,
    width: int = 880,
    height: int = 180,
    every: int = 1,
    color: str = ACCENT,
    title: str = "",
) -> str:
    """Vertical bars with labels under every ``every``-th bar and a tooltip on each."""
    n = max(1, len(values))
    left, bottom, top = 34, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    step = plot_w / n
    heights, peak = _heights(values)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#8884" />'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{count(peak * frac)}</text>'
        )
    for i, (label, value) in enumerate(values):
        h = plot_h * heights[i] / peak
        x = left + i * step
        parts.append(
            f'<rect x="{x + step * 0.1:.2f}" y="{top + plot_h - h:.2f}" '
            f'width="{max(0.5, step * 0.8):.2f}" height="{h:.2f}" fill="{color}">'
            f"<title>{escape(label)}: {count(value)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_hbars(values: Sequence[tuple[str, int]], *, width: int = 420, color: str = ACCENT) -> str:
    """Horizontal bars with the label on the left and the count on the right."""
    row, label_w, count_w = 20, 110, 60
    height = max(row, row * len(values)) + 4
    heights, peak = _heights(values)
    plot_w = width - label_w - count_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, value) in enumerate(values):
        y = i * row + 2
        w = plot_w * heights[i] / peak
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(label[:18])}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.2f}" height="{row - 6}" fill="{color}">'
            f"<title>{escape(label)}: {count(value)}</title></rect>"
            f'<text x="{label_w + w + 4:.2f}" y="{y + 13}">{count(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
