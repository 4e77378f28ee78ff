"""Completion from the tags already in use: of the last word of a tags field, and of a
``tag:`` filter being typed in the search box."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from textual.suggester import Suggester


def complete_tag(word: str, tags: Sequence[str], typed: Collection[str] = ()) -> str | None:
    """The most used tag starting with ``word`` (any case), other than ``word`` itself and
    the tags already typed."""
    if not word:
        return None
    lowered = word.lower()
    taken = {t.lower() for t in typed}
    for tag in tags:
        folded = tag.lower()
        if folded.startswith(lowered) and folded != lowered and folded not in taken:
            return tag
    return None


class TagSuggester(Suggester):
    """Suggest the most used tag that starts with the word being typed."""

    def __init__(self, tags: Callable[[], Sequence[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._tags = tags

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value[-1] in " ,":
            return None
        head, _, word = value.replace(",", " ").rpartition(" ")
        tag = complete_tag(word, self._tags(), head.split())
        return None if tag is None else value[: len(value) - len(word)] + tag


class QuerySuggester(Suggester):
    """In the search box, complete ``tag:li`` to ``tag:lisbon`` (also after ``-tag:``)."""

    def __init__(self, tags: Callable[[], Sequence[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._tags = tags

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value[-1] == " ":
            return None
        word = value.rpartition(" ")[2]
        key, colon, partial = word.partition(":")
        if not colon or key.lstrip("-").lower() != "tag" or not partial:
            return None
        tag = complete_tag(partial, self._tags())
        return None if tag is None else value[: len(value) - len(partial)] + tag
