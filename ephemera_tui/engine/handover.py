"""Hand the interpreter lock back quickly to a thread whose native call has returned.

A search spends most of its time in native code that releases the lock: ONNX Runtime embeds
the query while SQLite runs the keyword side on another thread. When such a call returns,
its thread asks for the lock back, and CPython lets whichever thread holds it run on until
its switch interval is up: 5 ms by default, longer than the query's embedding itself (2 ms
here). Meanwhile other threads run Python all the time: the keyword side's statement and
rows, the app's layout and painting. At 1 ms the wait is short; the extra hand-overs cost
microseconds.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.001


def quick_handover() -> None:
    """Set the interpreter's switch interval to :data:`SWITCH_INTERVAL_S`. Meant for a
    program's own process (the ``ephemera`` command), not a library call: it applies to
    every thread of the process."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
