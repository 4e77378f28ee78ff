"""What every command shares: the settings resolved once from the global options (kept in
Typer's ``ctx.obj``), an engine opened for one command, and one-line errors and notices."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from ..engine.config import Settings, load_settings
from ..engine.errors import EphemeraError

if TYPE_CHECKING:
    from ..engine.api import Journal
    from ..engine.core import Engine
    from ..service.client import ServiceClient

T = TypeVar("T")


@dataclass
class CliContext:
    """The global options of one ``ephemera`` invocation; ``settings()`` reads them once."""

    overrides: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.overrides, config_path=self.config_path)
        return self._settings


def current(ctx: typer.Context) -> CliContext:
    """The invocation's CliContext (``ctx.obj`` set by the root command's callback)."""
    found = ctx.find_object(CliContext)
    if found is None:  # a command invoked without the root callback (only in tests)
        found = CliContext()
        ctx.obj = found
    return found


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    typer.echo(f"ephemera: error: {message}", err=True)
    raise typer.Exit(code)


def notice(message: str) -> None:
    """Print one informational line on stderr (stdout stays for results)."""
    typer.echo(f"ephemera: {message}", err=True)


def guarded(func: Callable[[], T]) -> T:
    """Run ``func``; an engine error becomes one line and exit status 1."""
    try:
        return func()
    except EphemeraError as exc:
        _debug_cause(exc)
        fail(str(exc))


def settings(ctx: typer.Context) -> Settings:
    """The invocation's settings (errors in them are one line)."""
    return guarded(current(ctx).settings)


@contextmanager
def engine_session(ctx: typer.Context) -> Iterator[Engine]:
    """Open the engine for one command through the composition root; engine errors become
    one line and exit status 1; the engine is always closed."""
    from ..engine.compose import open_engine

    context = current(ctx)
    engine = None
    try:
        engine = open_engine(guarded(context.settings))
        yield engine
    except EphemeraError as exc:
        _debug_cause(exc)
        fail(str(exc))
    finally:
        if engine is not None:
            engine.close()


def service_client(ctx: typer.Context) -> ServiceClient | None:
    """A client of the resident engine serving this data dir, when one answers (and the
    service is not turned off)."""
    found = settings(ctx)
    if found.service == "off":
        return None
    from ..service.client import find_service

    return guarded(
        lambda: find_service(found.data_dir, url=found.service_url, token=found.service_token)
    )


@contextmanager
def journal_session(ctx: typer.Context) -> Iterator[Journal]:
    """The journal for one command: the resident engine serving this data dir when one
    answers (full hybrid search, no model to load), else the engine in-process."""
    client = service_client(ctx)
    if client is None:
        with engine_session(ctx) as engine:
            yield engine
        return
    try:
        yield client
    except EphemeraError as exc:
        _debug_cause(exc)
        fail(str(exc))
    finally:
        client.close()


def _debug_cause(exc: BaseException) -> None:
    """With EPHEMERA_DEBUG=1, show the whole chain of causes behind a one-line error."""
    if os.environ.get("EPHEMERA_DEBUG"):
        import traceback

        traceback.print_exception(exc)
