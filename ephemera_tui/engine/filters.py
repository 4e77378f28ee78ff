"""One filter, two translations: SQL conditions (store) and Qdrant payload conditions (vectors)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Metadata and time constraints shared by the keyword and semantic sides of a search.

    Times are Unix seconds: ``after`` inclusive, ``before`` exclusive. ``tags`` must all be
    present; ``sources`` any of. ``phrases`` (quoted in a query) must appear literally.
    """

    after: int | None = None
    before: int | None = None
    sources: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_importance: int | None = None
    max_importance: int | None = None
    min_confidence: int | None = None
    max_confidence: int | None = None
    phrases: tuple[str, ...] = ()
    ids: tuple[int, ...] | None = None
    exclude_ids: tuple[int, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self == SearchFilter()

    @property
    def payload_part(self) -> SearchFilter:
        """The part the vector store can evaluate (phrases need the text, which lives in SQL)."""
        return SearchFilter(
            after=self.after,
            before=self.before,
            sources=self.sources,
            tags=self.tags,
            min_importance=self.min_importance,
            max_importance=self.max_importance,
            min_confidence=self.min_confidence,
            max_confidence=self.max_confidence,
            exclude_ids=self.exclude_ids,
        )
