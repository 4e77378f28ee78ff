"""One filter, two translations: SQL conditions (store) and Qdrant payload conditions (vectors)."""

from __future__ import annotations

from dataclasses import dataclass, fields


def fold_tag(tag: str) -> str:
    """The form tags are compared in: tag filters ignore case; tags keep theirs for display."""
    return tag.lower()


def tag_spellings(tag: str) -> tuple[str, ...]:
    """The usual ways to write a folded tag (``work``, ``Work``, ``WORK``), each folding back to it.

    For stores that can only compare exactly (a vector payload written before it carried folded
    tags, SQLite's ASCII-only ``lower()``), matching these finds every tag written in the usual
    case and never one that differs.
    """
    folded = fold_tag(tag)
    forms = (folded, folded.capitalize(), folded.title(), folded.upper())
    return tuple(f for f in dict.fromkeys(forms) if fold_tag(f) == folded)


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Metadata and time constraints shared by the keyword and semantic sides of a search.

    Times are Unix seconds: ``after`` inclusive, ``before`` exclusive. ``tags`` must all be
    present and ``exclude_tags`` none, both compared without case (they are kept folded);
    ``sources`` any of, ``exclude_sources`` none of. ``phrases`` (quoted in a query) must appear
    literally and ``exclude_phrases`` must not; a memory holding a word of ``exclude_terms``
    (lower-cased, matched as the keyword side matches words) is left out.
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
    exclude_tags: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    exclude_terms: tuple[str, ...] = ()
    exclude_phrases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("tags", "exclude_tags"):
            folded = tuple(dict.fromkeys(fold_tag(t) for t in getattr(self, name)))
            object.__setattr__(self, name, folded)
        terms = tuple(dict.fromkeys(t.lower() for t in self.exclude_terms))
        object.__setattr__(self, "exclude_terms", terms)

    @property
    def is_empty(self) -> bool:
        return self == SearchFilter()

    @property
    def payload_part(self) -> SearchFilter:
        """The part the vector store can evaluate (text conditions need SQL)."""
        text_only = ("phrases", "exclude_terms", "exclude_phrases", "ids")
        kept = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in text_only}
        return SearchFilter(**kept)

    @property
    def needs_sql_check(self) -> bool:
        """Whether vector hits must be re-checked in SQL: the payload part cannot say it all.

        Text conditions live in SQL alone; an excluded tag is re-checked because payloads
        written before tags were stored folded may spell it in an unusual case.
        """
        return bool(self.phrases or self.exclude_terms or self.exclude_phrases or self.exclude_tags)
