"""V5 dumps (MeiliSearch 0.27 – 0.30): the V4 layout with the index uid inside each task.

See :mod:`.v4` for the layout; the differences are handled there (``version="V5"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..source import Bad
from . import v4
from .common import DumpContents


def read(path: Path, root: Path, meta: dict[str, Any], bad: Bad) -> DumpContents:
    return v4.read(path, root, meta, bad, version="V5")
