"""One way to call the engine from the UI: a named thread worker that reports errors politely.

Every engine call runs off the event loop. The result is handed back on the UI thread (through
``call_from_thread``) unless the worker was cancelled meanwhile (a newer query replaced it), so
stale answers never reach the screen. Engine errors become notifications, never tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.worker import Worker, get_current_worker

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from ..engine import Engine

T = TypeVar("T")


def error_message(exc: BaseException) -> str:
    """A one-line message for any exception (engine errors already are one line)."""
    from ..engine import EphemeraError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EphemeraError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def engine_call(
    node: DOMNode,
    job: Callable[[Engine], T],
    done: Callable[[T], Any] | None = None,
    *,
    group: str,
    exclusive: bool = True,
    title: str = "Engine error",
    failed: Callable[[str], Any] | None = None,
) -> Worker[None] | None:
    """Run ``job(engine)`` in a thread worker on ``node``; call ``done(result)`` on the UI thread.

    Returns None (and does nothing) while the engine is still opening. On error ``failed`` gets
    the message if given, otherwise the user sees a notification titled ``title``.
    """
    app = node.app
    engine: Engine | None = getattr(app, "engine", None)
    if engine is None:
        return None

    def work() -> None:
        worker = get_current_worker()
        try:
            result = job(engine)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            if worker.is_cancelled:
                return
            message = error_message(exc)
            if failed is not None:
                app.call_from_thread(failed, message)
            else:
                app.call_from_thread(
                    app.notify, message, title=title, severity="error", markup=False
                )
            return
        if done is not None and not worker.is_cancelled:
            app.call_from_thread(done, result)

    return node.run_worker(
        work, name=group, group=group, exclusive=exclusive, thread=True, exit_on_error=False
    )
