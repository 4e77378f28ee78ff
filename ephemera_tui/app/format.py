"""Pure text helpers: literal (markup-free) renderings of memories, relative times, snippets."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rich.text import Text

from ..presentation.times import relative_time

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


def absolute_time(when: float) -> str:
    """Local date and time, ISO-like."""
    return datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M")


def long_time(when: float) -> str:
    """'Tue 1 Dec 2026 10:30': weekday, day, month, year and time, never ambiguous."""
    moment = datetime.fromtimestamp(when)
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M}"


def _year(moment: datetime, now: float) -> str:
    """' 2022' when ``moment`` is not in the current year, else ''."""
    return "" if moment.year == datetime.fromtimestamp(now).year else f" {moment.year}"


def period_label(start: float, unit: str, now: float) -> str:
    """The day, week or month starting at ``start``, with the year only when it is not the
    current one: 'Tue 14 Nov', 'Tue 01 Dec 2022', '13–19 Nov', '27 Nov–3 Dec 2022', 'July 2022'.
    A week crossing New Year shows the year it ends in."""
    moment = datetime.fromtimestamp(start)
    if unit == "month":
        return f"{moment:%B}{_year(moment, now)}"
    if unit == "week":
        monday = moment - timedelta(days=moment.weekday())
        sunday = monday + timedelta(days=6)
        first = str(monday.day) if monday.month == sunday.month else f"{monday.day} {monday:%b}"
        this_year = datetime.fromtimestamp(now).year
        year = "" if monday.year == sunday.year == this_year else f" {sunday.year}"
        return f"{first}–{sunday.day} {sunday:%b}{year}"
    return f"{moment:%a %d %b}{_year(moment, now)}"


def period_key(when: float, unit: str) -> tuple[int, ...]:
    """A key equal for two moments in the same day, week (from Monday) or month."""
    moment = datetime.fromtimestamp(when)
    if unit == "month":
        return (moment.year, moment.month)
    if unit == "week":
        return tuple(moment.isocalendar()[:2])
    return (moment.year, moment.month, moment.day)


_PATH = re.compile(r"(?<![\w.])(?:~|/)[^\s:;,()]*/[^\s:;,()]+")


def short_path(path: str, keep: int = 1) -> str:
    """A long path cut to its last ``keep`` parts: '/tmp/x/vectors/shard' → '…/shard'."""
    parts = [p for p in path.split("/") if p]
    if len(parts) <= keep + 1:
        return path
    return "…/" + "/".join(parts[-keep:])


def short_notice(text: str) -> str:
    """A notice that fits a border: the reason before the detail, long paths shortened.

    'keyword results only: vector store /a/b/c is open in another process (an open app or
    worker); it will index new memories' becomes 'keyword only: open in another process (an
    open app or worker) · vector store …/c'.
    """
    text = one_line(text)
    head = ""
    lowered = text.lower()
    for prefix in ("keyword results only: ", "keyword only: "):
        if lowered.startswith(prefix):
            head, text = "keyword only: ", text[len(prefix) :]
            break
    store = re.match(r"(vector store|database|shard)\s+(\S+)\s+(?:is\s+)?(.*)$", text, re.I)
    if store:
        what, where, reason = store.groups()
        reason = reason.split("; it will")[0].rstrip(" ;.")
        text = f"{reason} · {what} {short_path(where)}"
    return head + _PATH.sub(lambda m: short_path(m.group(0)), text)


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


FACT_WIDTH = 11
WHY_WIDTH = 14


def _hanging(value: str, width: int | None, indent: int = FACT_WIDTH) -> str:
    """``value`` wrapped to ``width`` with continuation lines under the first (not column 0)."""
    room = (width or 0) - indent
    if room < 10 or len(value) <= room:
        return value
    lines = textwrap.wrap(value, room, break_long_words=True, break_on_hyphens=False)
    return ("\n" + " " * indent).join(lines)


def memory_detail(memory: Memory, now: float, width: int | None = None) -> Text:
    """The whole memory: content, then its facts and notes, all literal. With ``width``, a
    long fact (many tags) wraps under its own column instead of the labels'."""
    out = Text(clean(memory.content))
    out.append("\n\n")
    facts = [
        ("when", long_time(memory.created_at)),
        ("", relative_time(memory.created_at, now)),
        ("source", clean(memory.source)),
        ("importance", "-" if memory.importance is None else str(memory.importance)),
        ("confidence", "-" if memory.confidence is None else str(memory.confidence)),
        ("tags", " ".join(f"#{clean(t)}" for t in memory.tags) or "-"),
        ("id", str(memory.id)),
    ]
    for name, value in facts:
        out.append(f"{name:<{FACT_WIDTH}}", style="bold")
        out.append(_hanging(value, width) + "\n")
    if memory.notes and memory.notes.strip():
        out.append("\nNotes\n", style="bold underline")
        out.append(clean(memory.notes) + "\n")
    return out


def links_text(
    outgoing: Sequence[Memory], incoming: Sequence[Memory], width: int | None = None
) -> Text:
    """'→ links to' and '← linked from' lines; with ``width``, long ones wrap under the text."""
    out = Text()
    if not outgoing and not incoming:
        return out
    out.append("\nLinks\n", style="bold underline")
    for arrow, memories in (("→ ", outgoing), ("← ", incoming)):
        for memory in memories:
            out.append(arrow, style="bold")
            out.append(_hanging(memory_label(memory, 200), width, len(arrow)) + "\n")
    return out


def why_text(hit: Hit, listed_by: str | None = None, width: int | None = None) -> Text:
    """The 'why this hit' explanation: semantic and keyword parts of the fused score; for a
    query without words (``listed_by`` is then the query), the filter that let it through.
    With ``width``, long lines wrap under their value, not under the labels."""
    out = Text()
    out.append("Why this hit\n", style="bold underline")

    def fact(label: str, value: str) -> None:
        out.append(f"{label:<{WHY_WIDTH}}", style="bold")
        out.append(_hanging(value, width, WHY_WIDTH) + "\n")

    if listed_by is not None:
        filters = one_line(listed_by)
        fact("filter", f"matches {filters}" if filters else "none (the search box is empty)")
        fact("order", "newest first (no words to rank by)")
        return out
    out.append(f"{'fused score':<{WHY_WIDTH}}{hit.score:.4f}\n")
    if hit.semantic_rank is not None and hit.semantic_score is not None:
        fact("meaning", f"rank {hit.semantic_rank}, similarity {hit.semantic_score:.3f}")
    else:
        fact("meaning", "not among the closest by meaning")
    if hit.keyword_rank is not None and hit.keyword_score is not None:
        fact("words", f"rank {hit.keyword_rank}, score {hit.keyword_score:.3f}")
    else:
        fact("words", "no keyword match")
    content = hit.memory.content.lower()
    found = [t for t in hit.matched_terms if t.lower() in content]
    missing = [t for t in hit.matched_terms if t.lower() not in content]
    if found:
        fact("matched", " ".join(clean(t) for t in found))
    if missing:
        fact("not in text", " ".join(clean(t) for t in missing))
    return out
