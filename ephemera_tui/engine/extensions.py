"""Hooks run on every new Engine (kept apart from core so registering one stays cheap).

An extension is ``f(engine)``; it may add observers to ``engine.write_observers`` (the
MeiliSearch migration's dual writer does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ENGINE_EXTENSIONS: list[Callable[[Any], None]] = []
