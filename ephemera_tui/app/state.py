"""What the app remembers between runs, in the data dir (never in the user's config file):
the chosen theme in ``app-state.json`` and an unsaved capture form in ``draft.json``.

Both are small JSON files written atomically (a temporary file renamed over the old one), so a
terminal dropped mid-write leaves the previous version, never half a file. Unreadable files are
treated as absent: losing a theme choice must never stop the app from starting.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

STATE_FILE = "app-state.json"
DRAFT_FILE = "draft.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically; errors are swallowed (state is a convenience)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, ensure_ascii=False, indent=1)
            os.replace(name, path)
        except OSError:
            Path(name).unlink(missing_ok=True)


class AppState:
    """Small preferences chosen inside the app (today: the theme)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / STATE_FILE

    def theme(self, configured: str | None) -> str | None:
        """The theme to start with: the one last chosen in the app, unless the config file's
        theme changed since that choice (an edited config wins over an old choice)."""
        data = self._read()
        chosen = data.get("theme")
        if not isinstance(chosen, str):
            return configured
        if configured and data.get("config_theme") != configured:
            return configured
        return chosen

    def save_theme(self, theme: str, configured: str | None) -> None:
        """Remember ``theme`` (and the config's theme at the time, see :meth:`theme`)."""
        data = self._read()
        data.update(theme=theme, config_theme=configured)
        _write_json(self.path, data)

    def _read(self) -> dict[str, Any]:
        return _read_json(self.path)


@dataclass(frozen=True, slots=True)
class FormDraft:
    """Everything typed into the capture form, as text, plus what it was editing."""

    content: str = ""
    tags: str = ""
    source: str = ""
    when: str = ""
    importance: str = ""
    confidence: str = ""
    notes: str = ""
    memory_id: int | None = None  # None: a new memory
    saved_at: float = 0.0

    def same_fields(self, other: FormDraft) -> bool:
        """Whether the typed fields are equal (ignoring when it was written)."""
        skip = {"saved_at"}
        return all(
            getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)
            if f.name not in skip
        )


class DraftStore:
    """The one unsaved form, kept until it is saved or the user declines to restore it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DRAFT_FILE

    def load(self) -> FormDraft | None:
        data = _read_json(self.path)
        if not data:
            return None
        known = {f.name for f in fields(FormDraft)}
        try:
            draft = FormDraft(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None
        if not draft.content.strip() and not draft.notes.strip() and not draft.tags.strip():
            return None
        return draft

    def save(self, draft: FormDraft) -> None:
        _write_json(self.path, asdict(draft))

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
