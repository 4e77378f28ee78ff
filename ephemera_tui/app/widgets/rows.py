"""An option prompt of a fixed number of one-line rows, drawn only when painted.

An OptionList measures every option's height when its options are set, and for a Rich
renderable that means rendering it in full; the paint then renders it again. A list of
search hits is set on every keystroke, so measuring was a quarter of the UI thread's time per
key. Here the height is known (one line per row, each cropped with an ellipsis), so setting
the options renders nothing, and the rows are built when drawn (a relative time such as
"3 min ago" is read then, as before).

Painting renders every visible option again after each change of options, and while a query is
typed most rows come back the same (the same memory, nothing new to highlight in it). A list
can share a :class:`RowCache` between its prompts: a row drawn before, at the same width and
style, is then not rendered again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.cache import LRUCache
from textual.css.styles import RulesMap
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, RichVisual, Visual
from textual.widget import Widget

RowCache = LRUCache[tuple[object, ...], list[Strip]]
"""Rendered rows by (their text and styles, width, base style)."""


def row_cache(size: int = 512) -> RowCache:
    """A cache for :class:`FixedRows` (a list's two screens of rows, several times over)."""
    return LRUCache(size)


class FixedRows(Visual):
    """``count`` rows of text from ``make`` (called when drawn), one line each."""

    def __init__(
        self,
        widget: Widget,
        count: int,
        make: Callable[[], Sequence[Text]],
        cache: RowCache | None = None,
    ) -> None:
        self._widget = widget
        self._count = count
        self._make = make
        self._cache = cache

    def rows(self) -> list[Text]:
        """The rows as they would be drawn now: exactly ``count``, each on one line."""
        made = list(self._make())[: self._count]
        made += [Text() for _ in range(self._count - len(made))]
        for row in made:
            row.no_wrap = True
            row.overflow = "ellipsis"
        return made

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return max((cell_len(row.plain) for row in self.rows()), default=0)

    def get_height(self, rules: RulesMap, width: int) -> int:
        return self._count

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        rows = self.rows()
        cache = self._cache if options.selection is None else None
        key: tuple[object, ...] = ()
        if cache is not None:
            key = (*((r.plain, r.style, *r.spans) for r in rows), width, style)
            if (found := cache.get(key)) is not None:
                return found
        strips: list[Strip] = []
        for row in rows:
            strips.extend(RichVisual(self._widget, row).render_strips(width, 1, style, options))
        if cache is not None:
            cache[key] = strips
        return strips
