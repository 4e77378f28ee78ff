"""The result list's rows: a known height (setting hits renders nothing), rendered when painted,
and painted again from the list's cache when a row comes back unchanged."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from ephemera_tui.app.widgets import rows as rows_module
from ephemera_tui.app.widgets.results import ResultList
from ephemera_tui.engine import Hit, Memory

NOW = 1_700_000_000.0


def hit(n: int, content: str, terms: tuple[str, ...] = ()) -> Hit:
    memory = Memory(n, content, int(NOW) - 3600, "note", 100, 200, ("work",))
    return Hit(memory, 1.0 / n, matched_terms=terms)


class ListApp(App[None]):
    CSS = "ResultList { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield ResultList(id="results", now=lambda: NOW)


class Counting:
    """Counts the rows built and rendered, through the real code."""

    def __init__(self, monkeypatch: Any) -> None:
        self.built = 0
        self.rendered = 0
        real_rows = rows_module.FixedRows.rows
        real_visual = rows_module.RichVisual

        def rows(visual: rows_module.FixedRows) -> Any:
            self.built += 1
            return real_rows(visual)

        def visual(*args: Any) -> Any:
            self.rendered += 1
            return real_visual(*args)

        monkeypatch.setattr(rows_module.FixedRows, "rows", rows)
        monkeypatch.setattr(rows_module, "RichVisual", visual)


async def test_setting_hits_renders_nothing_until_painted(monkeypatch: Any) -> None:
    count = Counting(monkeypatch)
    hits = [hit(n, f"memory number {n} " + "long words " * 40) for n in range(1, 21)]
    async with ListApp().run_test(size=(80, 24)) as pilot:
        results = pilot.app.query_one(ResultList)
        await pilot.pause()
        results.select_memory(hits, None)
        assert results.option_count == 20
        assert results._lines and len(results._lines) == 40  # two lines each, however long
        assert count.built == 0
        await pilot.pause()
        assert 0 < count.built <= 20  # the rows on screen, not every hit
        first, meta = (results.render_line(y).text for y in (0, 1))
    assert first.startswith("memory number 1 long words") and first.rstrip().endswith("…")
    assert meta.startswith("1 h ago · note · imp 100") and "#work" in meta


async def test_unchanged_rows_are_painted_from_the_cache(monkeypatch: Any) -> None:
    count = Counting(monkeypatch)
    first = [hit(n, f"walked the dog, day {n}", ("dog",)) for n in range(1, 11)]
    async with ListApp().run_test(size=(80, 24)) as pilot:
        results = pilot.app.query_one(ResultList)
        results.select_memory(first, None)
        await pilot.pause()
        painted = count.rendered
        assert painted > 0
        # The next keystroke: same memories, same words highlighted, new scores.
        again = [Hit(h.memory, h.score / 2, matched_terms=("dog", "zz")) for h in first]
        results.select_memory(again, None)
        await pilot.pause()
        assert count.rendered == painted
        # A word that now matches changes the highlight: those rows are rendered again.
        changed = [Hit(h.memory, h.score, matched_terms=("dog", "day")) for h in first]
        results.select_memory(changed, None)
        await pilot.pause()
        assert count.rendered > painted
