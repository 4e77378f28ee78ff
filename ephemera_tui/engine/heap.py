"""Keep the garbage collector's full passes short in a long-lived process.

By the time the app or the resident engine is ready to search, the process holds some 150k
objects that live as long as it does (modules, classes, functions, the tokenizer, the ORM's
metadata). CPython's full collection walks all of them every time it runs, which here took
60-100 ms: a pause in the middle of a keystroke's search. Moving them to the permanent
generation once, at the end of start-up, leaves the full passes only what came after.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Collect what start-up left behind, then freeze everything still alive out of the
    collector's walks. Call once, when the process is ready to serve; returns how many
    objects were frozen. Meant for a program's own process (the app, ``ephemera serve``),
    not a library call: frozen objects that die later are only freed by reference count."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
