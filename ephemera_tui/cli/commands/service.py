"""``ephemera serve``: the resident engine, so every process on this data dir gets full
hybrid search without loading the model or opening the stores itself."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import engine_session, fail, notice, settings


def serve(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="Also serve over TCP on HOST:PORT (beyond loopback only with a token).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="EPHEMERA_SERVICE_TOKEN",
            help="Bearer token clients must send (default: the service_token setting).",
        ),
    ] = None,
) -> None:
    """Run the resident engine: a local API on a Unix socket in the data dir (mode 0600),
    the change feed, /v1/embeddings, and the background upkeep. Other ephemera processes on
    this data dir use it without being told. Stops on ctrl+c or SIGTERM."""
    import asyncio
    import threading

    from ...engine.errors import EphemeraError
    from ...engine.heap import settle
    from ...engine.sync.worker import Worker
    from ...service.runner import Service

    config = settings(ctx)
    with engine_session(ctx) as engine:
        if engine.vectors() is None:
            fail(f"cannot hold the vector store: {engine.vector_status}")
        engine.prepare_interactive()
        try:
            service = Service(engine, listen=listen, token=token or config.service_token)
        except EphemeraError as exc:
            fail(str(exc))
        upkeep = Worker(
            engine,
            interval=config.sync_interval,
            backup_dir=config.resolved_backup_dir,
            backup_every=config.backup_every_hours * 3600,
            index_threshold=config.index_threshold,
        )
        stop = threading.Event()
        thread = threading.Thread(
            target=upkeep.run_forever, args=(stop,), name="ephemera-upkeep", daemon=True
        )
        settle()  # this process is the service's own: keep its full collections short
        thread.start()
        notice(
            f"serving {config.data_dir} on {service.path}" + (f" and {listen}" if listen else "")
        )
        try:
            asyncio.run(service.serve())
        except EphemeraError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            thread.join(10)
        notice("service stopped")


def register(app: typer.Typer) -> None:
    """Add ``serve``."""
    app.command("serve")(serve)
