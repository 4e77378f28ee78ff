"""The engine must stay free of Textual, and importing it must stay cheap."""

from __future__ import annotations

import subprocess
import sys


def test_engine_never_imports_textual() -> None:
    code = (
        "import sys\n"
        "import ephemera_tui.engine, ephemera_tui.engine.core, ephemera_tui.engine.store\n"
        "import ephemera_tui.engine.vectors, ephemera_tui.engine.embedder\n"
        "import ephemera_tui.engine.jsonl\n"
        "import ephemera_tui.cli\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "heavy = sorted(m for m in ('fastembed', 'qdrant_client') if m in sys.modules)\n"
        "print(bad, heavy)\n"
        "sys.exit(1 if bad or heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_and_settings_import_without_the_database_layer() -> None:
    """`ephemera --help` and the app's first paint must not wait for SQLAlchemy (~0.5 s)."""
    code = (
        "import sys\n"
        "import ephemera_tui.cli\n"
        "from ephemera_tui.engine import load_settings\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'fastembed', 'qdrant_client',\n"
        "               'qdrant_edge', 'numpy', 'textual') if m in sys.modules)\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
