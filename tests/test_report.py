"""``ephemera report``: text in the terminal, JSON, and a self-contained HTML page."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ephemera_tui.engine import Draft, Engine
from ephemera_tui.engine.analytics import patterns
from ephemera_tui.engine.observability.report import collect
from ephemera_tui.presentation.charts import bar, filled, sparkline
from ephemera_tui.presentation.report import render_html, render_text
from tests.helpers import invoke_ephemera

DAY = 86400


def fill(engine: Engine) -> None:
    now = int(engine.clock())
    for i in range(40):
        engine.add(
            Draft(
                content=f"memory {i} <b>&amp;</b>",
                created_at=now - (i % 20) * DAY - i * 3600,
                source=("note", "chat", "web")[i % 3],
                importance=(i * 37) % 256,
                tags=("work",) if i < 10 else ("garden", "<script>"),
            )
        )


def test_chart_helpers() -> None:
    assert bar(0, 10, 10) == ""
    assert bar(10, 10, 4) == "████"
    assert bar(5, 10, 4) == "██"
    assert bar(1, 1000, 4) == "▏"  # never invisible when non-zero
    assert sparkline([0, 1, 2, 4]) == " ▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert filled([(0, 1), (3 * DAY, 2)], "day", 0) == [
        (0, 1),
        (DAY, 0),
        (2 * DAY, 0),
        (3 * DAY, 2),
    ]


def test_text_report(engine: Engine) -> None:
    fill(engine)
    text = render_text(patterns(engine, utc_offset=0))
    assert text.startswith("Ephemera — memory patterns\n40 memories from")
    for heading in (
        "Activity per day",
        "Tags: last 30 days",
        "Sources",
        "Importance",
        "Confidence",
        "Busiest hours",
        "Weekdays",
    ):
        assert heading in text, heading
    assert "▲ garden" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_html_report_is_self_contained(engine: Engine, tmp_path: Path) -> None:
    fill(engine)
    engine.search("memory")
    page = render_html(patterns(engine, utc_offset=0), collect(engine))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.replace("&lt;script&gt;", "")  # tag text is escaped
    assert "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)
    # The only URL is the SVG namespace, which is never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) >= 7
    for svg in svgs:
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag.endswith("svg")
        assert root.findall(".//{http://www.w3.org/2000/svg}rect")
    assert "<h2>System</h2>" in page and "search: p50 " in page and " ms, p95 " in page


def test_empty_journal_reports(engine: Engine) -> None:
    p = patterns(engine)
    assert "No memories yet." in render_text(p)
    assert "No memories yet." in render_html(p)


def test_report_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    for text, tag in (("Hiked to the lake", "trip"), ("Fixed the sync bug", "work")):
        assert invoke_ephemera("add", text, "-t", tag, env=cli_env).returncode == 0
    shown = invoke_ephemera("report", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "2 memories from" in shown.stdout and "System" in shown.stdout
    out = tmp_path / "report.html"
    written = invoke_ephemera("report", "--format", "html", "-o", str(out), env=cli_env)
    assert written.returncode == 0, written.stderr
    assert "wrote" in written.stderr
    page = out.read_text(encoding="utf-8")
    assert "<svg" in page and "Memory patterns" in page
    data = json.loads(invoke_ephemera("report", "-f", "json", "--no-system", env=cli_env).stdout)
    assert data["total"] == 2 and "system" not in data
    assert {t for t, _ in data["top_tags"]} == {"trip", "work"}
    bad = invoke_ephemera("report", "--format", "pdf", env=cli_env)
    assert bad.returncode != 0 and "unknown format" in bad.stderr
