"""SQL conditions for a :class:`~ephemera_tui.engine.filters.SearchFilter`, shared by browse,
count, keyword search and the re-check of vector hits (same meaning as the payload filter)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists

from ..filters import SearchFilter
from .keyword import escape_like
from .tables import FRAGMENTS, TAGS


def filter_conditions(flt: SearchFilter) -> list[Any]:
    """SQL conditions for a filter (same meaning as the vector-side payload filter)."""
    c = FRAGMENTS.c
    conds: list[Any] = []
    if flt.after is not None:
        conds.append(c.created_at >= flt.after)
    if flt.before is not None:
        conds.append(c.created_at < flt.before)
    if flt.sources:
        conds.append(c.source.in_(list(flt.sources)))
    for name in ("importance", "confidence"):
        low, high = getattr(flt, f"min_{name}"), getattr(flt, f"max_{name}")
        if low is not None:
            conds.append(getattr(c, name) >= low)
        if high is not None:
            conds.append(getattr(c, name) <= high)
    for tag in flt.tags:
        conds.append(exists().where(TAGS.c.memory_id == c.id, TAGS.c.tag == tag))
    for phrase in flt.phrases:
        conds.append(c.content.like(f"%{escape_like(phrase)}%", escape="\\"))
    if flt.ids is not None:
        conds.append(c.id.in_(list(flt.ids)))
    if flt.exclude_ids:
        conds.append(c.id.not_in(list(flt.exclude_ids)))
    return conds
