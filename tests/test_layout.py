"""Import hygiene: every module outside the app imports without Textual, the engine never
reaches up into the CLI or the app, and the command line starts without the heavy libraries.

Each module is imported in a fresh interpreter, since one test process has long since loaded
everything; the list of modules comes from walking the package, so a new module is covered
the day it is added.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ephemera_tui

PACKAGE = "ephemera_tui"
ROOT = Path(ephemera_tui.__file__).resolve().parent
APP = f"{PACKAGE}.app"
UPWARD = (f"{PACKAGE}.app", f"{PACKAGE}.cli")  # what the engine must never import
ALEMBIC_ENV = f"{PACKAGE}.engine.store.migrations.env"  # run by Alembic, not imported


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def headless_modules() -> list[str]:
    """Every module of the package except the Textual app, found by walking the package."""
    names = [PACKAGE]
    for top in pkgutil.iter_modules([str(ROOT)], f"{PACKAGE}."):
        if top.name == APP:
            continue
        names.append(top.name)
        if top.ispkg:
            package = importlib.import_module(top.name)
            names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{top.name}.")]
    return sorted(names)


HEADLESS = headless_modules()

# Runs in a fresh interpreter: load one module the way it is used, then report what came with
# it. ``__main__`` modules run the command line with --help; Alembic's env.py runs inside a
# schema migration on a scratch SQLite file.
PROBE = """
import importlib, json, sys, tempfile

name = sys.argv[1]
if name.endswith(".__main__"):
    sys.argv = ["ephemera", "--help"]
    try:
        importlib.import_module(name)
    except SystemExit as done:
        assert done.code in (0, None), done.code
elif name == sys.argv[2]:
    from ephemera_tui.engine.store.connection import make_sql_engine, migrate

    with tempfile.TemporaryDirectory() as tmp:
        sql = make_sql_engine(f"sqlite:///{tmp}/schema.db")
        migrate(sql)
        sql.dispose()
else:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_with(module: str) -> set[str]:
    """The names in ``sys.modules`` after importing ``module`` in a new interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, ALEMBIC_ENV],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT.parent,
    )
    assert done.returncode == 0, f"importing {module} failed:\n{done.stderr}"
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_walk_finds_every_module_file() -> None:
    """A folder without ``__init__.py`` or a module the walk skips would escape the checks."""
    on_disk = set()
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if not _within(name, APP):
            on_disk.add(name)
    assert on_disk == set(HEADLESS)
    assert ALEMBIC_ENV in HEADLESS and f"{PACKAGE}.cli.__main__" in HEADLESS


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_module_imports_without_textual(module: str) -> None:
    loaded = loaded_with(module)
    # The probe did run it (a module that exits, as __main__ does, leaves sys.modules again).
    if module.endswith(".__main__"):
        assert f"{PACKAGE}.cli.main" in loaded
    elif module == ALEMBIC_ENV:
        assert "alembic.runtime.migration" in loaded
    else:
        assert module in loaded
    textual = sorted(m for m in loaded if _within(m, "textual"))
    assert not textual, f"{module} loads Textual: {textual[:5]}"
    if _within(module, f"{PACKAGE}.engine"):
        upward = sorted(m for m in loaded if any(_within(m, up) for up in UPWARD))
        assert not upward, f"{module} (engine) imports {upward}"


def _imported_names(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module an ``import`` statement in ``path`` names (lazy and TYPE_CHECKING ones
    included), relative imports resolved against ``module``."""
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = ".".join(base[: len(base) - node.level + 1])
                target = f"{stem}.{node.module}" if node.module else stem
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def test_engine_source_never_imports_the_cli_or_the_app() -> None:
    """Also catches imports inside functions, which importing the module does not run."""
    engine = ROOT / "engine"
    offenders = []
    for path in sorted(engine.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for line, name in _imported_names(path, module):
            if any(_within(name, up) for up in UPWARD):
                offenders.append(f"{path.relative_to(ROOT.parent)}:{line}: {name}")
    assert not offenders


def test_the_source_check_sees_relative_imports(tmp_path: Path) -> None:
    """The check above resolves ``from ...cli import x`` and ``from ... import app``."""
    source = tmp_path / "probe.py"
    source.write_text(
        "def later():\n"
        "    from ...cli import main\n"
        "    from ... import app\n"
        "    from .store import sql\n"
    )
    names = [name for _, name in _imported_names(source, f"{PACKAGE}.engine.sync.probe")]
    assert f"{PACKAGE}.cli.main" in names
    assert f"{PACKAGE}.app" in names
    assert f"{PACKAGE}.engine.sync.store.sql" in names


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


def test_opening_the_engine_modules_leaves_the_model_and_server_client_alone() -> None:
    """fastembed and qdrant-client load only when an engine needs them, not on import."""
    code = (
        "import sys\n"
        "import ephemera_tui.engine.core, ephemera_tui.engine.store\n"
        "import ephemera_tui.engine.vectors, ephemera_tui.engine.embedder\n"
        "import ephemera_tui.engine.jsonl, ephemera_tui.engine.compose\n"
        "heavy = sorted(m for m in ('fastembed', 'qdrant_client') if m in sys.modules)\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
