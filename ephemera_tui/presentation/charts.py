"""Text charts shared by ``ephemera report`` and the app: bars and sparklines of block
characters, and time buckets at a fixed UTC offset. No Textual, no Rich.

Values that are not finite (NaN, infinity) or negative draw as nothing: a chart shows how much,
and there is no such thing as minus three memories in a week."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

BLOCKS = " ▏▎▍▌▋▊▉█"
SPARK = "▁▂▃▄▅▆▇█"
EPOCH = datetime(1970, 1, 1)


def local_time(ts: float, offset: int) -> datetime:
    """A naive datetime of ``ts`` at a fixed UTC offset (the report's local time). A stored
    value outside the accepted dates (written before they were enforced) shows at the range's
    nearest end, so one odd memory cannot break a report."""
    from ..engine.dates import MAX_TIMESTAMP, MIN_TIMESTAMP

    clamped = min(max(ts, MIN_TIMESTAMP), MAX_TIMESTAMP) if math.isfinite(ts) else 0
    return datetime.fromtimestamp(clamped, UTC).replace(tzinfo=None) + timedelta(seconds=offset)


def _amount(value: float) -> float:
    """``value`` as a drawable amount: NaN, infinities and negatives count as nothing."""
    return value if math.isfinite(value) and value > 0 else 0.0


def bar(value: float, peak: float, width: int) -> str:
    """A horizontal bar of eighth-blocks, ``width`` cells for ``peak``; at least one eighth for
    any positive value, so a small count never looks like none."""
    value, peak = _amount(value), _amount(peak)
    if peak <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = max(1, round(min(value, peak) / peak * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (BLOCKS[rest] if rest else "")


def sparkline(values: Sequence[float]) -> str:
    """One character per value, scaled to the largest; a blank for nothing (zero, negative,
    NaN), the lowest block throughout when every value is nothing."""
    amounts = [_amount(v) for v in values]
    peak = max(amounts, default=0.0)
    if peak <= 0:
        return "▁" * len(amounts)
    return "".join(SPARK[min(7, round(v / peak * 7))] if v else " " for v in amounts)


def filled(buckets: list[tuple[int, int]], unit: str, offset: int) -> list[tuple[int, int]]:
    """The buckets with empty ones inserted between, so gaps in time show."""
    if not buckets:
        return []
    counts = dict(buckets)
    out: list[tuple[int, int]] = []
    start, last = buckets[0][0], buckets[-1][0]
    while start <= last and len(out) < 50_000:
        out.append((start, counts.get(start, 0)))
        moment = local_time(start, offset)
        if unit == "month":
            nxt = moment.replace(
                year=moment.year + (moment.month == 12), month=moment.month % 12 + 1, day=1
            )
        else:
            nxt = moment + timedelta(days=7 if unit == "week" else 1)
        start = int((nxt - EPOCH).total_seconds()) - offset
    return out


def bucket_label(start: int, unit: str, offset: int) -> str:
    """The month ('2026-11'), week ('wk 2026-11-23') or day ('2026-11-23') starting at
    ``start``, at the fixed offset."""
    moment = local_time(start, offset)
    if unit == "month":
        return f"{moment:%Y-%m}"
    if unit == "week":
        return f"wk {moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d}"
