"""Pure text helpers: literal (markup-free) renderings of memories, relative times, snippets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from ..engine import Hit, Memory

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")

HIGHLIGHT = "bold reverse"
"""Style of matched words: reverse video still reads without colour (NO_COLOR)."""

META = "dim"
"""Style of the secondary line under a memory (time, source, importance, tags)."""


def clean(text: str | None) -> str:
    """Remove control characters (terminal escapes included), keeping newlines; tabs → spaces."""
    if not text:
        return ""
    return _CONTROL.sub("", text.replace("\t", "    ").replace("\r\n", "\n"))


def one_line(text: str | None) -> str:
    """Clean text collapsed onto one line."""
    return _SPACES.sub(" ", clean(text)).strip()


def relative_time(when: float, now: float) -> str:
    """A short human phrase for how long ago ``when`` was ("5 min ago", "3 days ago", a date)."""
    delta = now - when
    if delta < 0:
        return "in the future" if delta < -60 else "just now"
    if delta < 60:
        return "just now"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 86400:
        return f"{int(delta // 3600)} h ago"
    days = int(delta // 86400)
    if days == 1:
        return "yesterday"
    if days < 30:
        return f"{days} days ago"
    moment = datetime.fromtimestamp(when)
    if days < 365:
        return moment.strftime("%d %b")
    return moment.strftime("%d %b %Y")


def absolute_time(when: float) -> str:
    """Local date and time, ISO-like."""
    return datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M")


def meta_line(memory: Memory, now: float) -> Text:
    """'3 days ago · note · imp 200 · #tag #tag' as literal text."""
    parts = [relative_time(memory.created_at, now), clean(memory.source)]
    if memory.importance is not None:
        parts.append(f"imp {memory.importance}")
    line = Text(" · ".join(parts), style=META, no_wrap=True, overflow="ellipsis")
    if memory.tags:
        line.append(" · " + " ".join(f"#{clean(t)}" for t in memory.tags), style=META)
    return line


def highlight(text: Text, terms: Iterable[str]) -> Text:
    """Highlight each term (case-insensitive) in ``text``; terms are matched literally."""
    words = [t for t in terms if t.strip()]
    if words:
        text.highlight_words(words, HIGHLIGHT, case_sensitive=False)
    return text


def snippet(content: str, terms: Sequence[str], lead: int = 12, keep: int = 24) -> Text:
    """One line of ``content``, starting a little before the first matched term if that term
    is further in than ``keep`` characters; matched terms highlighted."""
    flat = one_line(content)
    lower = flat.lower()
    positions = [lower.find(t.lower()) for t in terms if t and lower.find(t.lower()) >= 0]
    first = min(positions) if positions else 0
    start = first - lead if first > keep else 0
    if start:
        cut = flat.find(" ", start)
        start = cut + 1 if 0 <= cut < min(positions) else start
    body = ("…" if start else "") + flat[start:]
    return highlight(Text(body, no_wrap=True, overflow="ellipsis"), terms)


def memory_label(memory: Memory, width: int = 60) -> str:
    """A short literal label for a memory (used in confirmations and breadcrumbs)."""
    flat = one_line(memory.content)
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def memory_detail(memory: Memory, now: float) -> Text:
    """The whole memory: content, then its facts and notes, all literal."""
    out = Text(clean(memory.content))
    out.append("\n\n")
    facts = [
        ("when", absolute_time(memory.created_at)),
        ("", relative_time(memory.created_at, now)),
        ("source", clean(memory.source)),
        ("importance", "-" if memory.importance is None else str(memory.importance)),
        ("confidence", "-" if memory.confidence is None else str(memory.confidence)),
        ("tags", " ".join(f"#{clean(t)}" for t in memory.tags) or "-"),
        ("id", str(memory.id)),
    ]
    for name, value in facts:
        out.append(f"{name:<11}", style="bold")
        out.append(value + "\n")
    if memory.notes and memory.notes.strip():
        out.append("\nNotes\n", style="bold underline")
        out.append(clean(memory.notes) + "\n")
    return out


def links_text(outgoing: Sequence[Memory], incoming: Sequence[Memory]) -> Text:
    """'→ links to' and '← linked from' lines for the preview pane."""
    out = Text()
    if not outgoing and not incoming:
        return out
    out.append("\nLinks\n", style="bold underline")
    for arrow, memories in (("→ ", outgoing), ("← ", incoming)):
        for memory in memories:
            out.append(arrow, style="bold")
            out.append(memory_label(memory, 70) + "\n")
    return out


def why_text(hit: Hit) -> Text:
    """The 'why this hit' explanation: semantic and keyword parts of the fused score."""
    out = Text()
    out.append("Why this hit\n", style="bold underline")
    out.append(f"fused score   {hit.score:.4f}\n")
    if hit.semantic_rank is not None and hit.semantic_score is not None:
        out.append("meaning       ", style="bold")
        out.append(f"rank {hit.semantic_rank}, similarity {hit.semantic_score:.3f}\n")
    else:
        out.append("meaning       ", style="bold")
        out.append("not among the closest by meaning\n")
    if hit.keyword_rank is not None and hit.keyword_score is not None:
        out.append("words         ", style="bold")
        out.append(f"rank {hit.keyword_rank}, score {hit.keyword_score:.3f}\n")
    else:
        out.append("words         ", style="bold")
        out.append("no keyword match\n")
    content = hit.memory.content.lower()
    found = [t for t in hit.matched_terms if t.lower() in content]
    missing = [t for t in hit.matched_terms if t.lower() not in content]
    if found:
        out.append("matched       ", style="bold")
        out.append(" ".join(clean(t) for t in found) + "\n")
    if missing:
        out.append("not in text   ", style="bold")
        out.append(" ".join(clean(t) for t in missing) + "\n")
    return out
