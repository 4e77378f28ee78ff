"""Completion of the last word of a tags field from the tags already in use."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.suggester import Suggester


class TagSuggester(Suggester):
    """Suggest the most used tag that starts with the word being typed."""

    def __init__(self, tags: Callable[[], Sequence[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._tags = tags

    async def get_suggestion(self, value: str) -> str | None:
        if not value or value[-1] in " ,":
            return None
        head, _, word = value.replace(",", " ").rpartition(" ")
        prefix = value[: len(value) - len(word)]
        typed = set(head.split())
        for tag in self._tags():
            if tag.startswith(word) and tag != word and tag not in typed:
                return prefix + tag
        return None
