"""Operations commands: ``check`` (health), ``worker``, ``backup`` and ``restore``.

Heavy imports stay inside the functions (``ephemera --help`` imports this module).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ...presentation.numbers import count, plural
from ..context import engine_session, fail, guarded, notice, settings

KEEP_DAILY = typer.Option(
    "--keep-daily",
    envvar="EPHEMERA_BACKUP_KEEP_DAILY",
    help="Keep the newest set of the last N days.",
)
KEEP_WEEKLY = typer.Option(
    "--keep-weekly", envvar="EPHEMERA_BACKUP_KEEP_WEEKLY", help="…and of the last N weeks."
)


def check(
    ctx: typer.Context,
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Health and cross-check: SQL against the vector store (missing, orphaned, stale, wrong
    model), pending outbox and its age, last check, last backup. Exit 1 on problems."""
    from ...engine.sync.worker import health, record_check
    from ...presentation.health import health_lines

    with engine_session(ctx) as engine:
        report = engine.check(repair=repair)
        record_check(engine, report)
        remaining = engine.check() if repair else report
        data = health(engine)
        if as_json:
            out = report.to_dict()
            out["remaining_problems"] = remaining.problems
            out["health"] = data.to_dict()
            typer.echo(json.dumps(out, default=str))
        else:
            typer.echo(
                f"checked {report.checked}: missing {len(report.missing)}, orphaned "
                f"{len(report.orphaned)}, stale {len(report.stale)}, wrong model "
                f"{len(report.wrong_model)}, pending {report.pending}"
                + (f"; repaired {report.repaired}" if repair else "")
            )
            for line in health_lines(data):
                typer.echo(line)
        if report.vector_status != "ok":
            fail(f"vector store unavailable: {report.vector_status}")
        if remaining.problems:
            raise typer.Exit(1)


def worker(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between runs.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    slice_size: Annotated[
        int, typer.Option("--slice", help="Memories cross-checked per run.")
    ] = 1000,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir", help="Default: the backup_dir setting, else DATA_DIR/backups."
        ),
    ] = None,
    backup_every: Annotated[
        float | None,
        typer.Option(
            "--backup-every",
            help="Hours between scheduled backups (default: the backup_every_hours setting).",
        ),
    ] = None,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="No scheduled backups.")] = False,
    keep_daily: Annotated[int, KEEP_DAILY] = 7,
    keep_weekly: Annotated[int, KEEP_WEEKLY] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per run.")] = False,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus /metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for /metrics (default localhost only).")
    ] = "127.0.0.1",
    recall_every: Annotated[
        float, typer.Option("--recall-every", help="Hours between index recall@10 samples, 0: off.")
    ] = 1.0,
) -> None:
    """Headless background worker for servers: drain the outbox, cross-check a slice, repair,
    take scheduled backups. Several may run against one database: they take turns."""
    import signal
    import threading

    from ...engine.observability.prometheus import serve_metrics
    from ...engine.observability.quality import sample_after_run
    from ...engine.sync.worker import Worker, WorkerRun

    def report(run: WorkerRun) -> None:
        if as_json:
            typer.echo(json.dumps(run.to_dict()))
        elif run.ran and (run.synced or run.found or run.backup or run.errors) or once:
            typer.echo(f"worker: {run.summary()}", err=True)
        if run.ran and recall_every > 0:
            release = not engine.settings.qdrant_url and not runner.indexer.active
            sample_after_run(engine, recall_every * 3600, release=release)

    with engine_session(ctx) as engine:
        settings = engine.settings
        every = settings.backup_every_hours if backup_every is None else backup_every
        target = None if no_backup or every <= 0 else (backup_dir or settings.backup_root)
        runner = Worker(
            engine,
            interval=interval,
            check_slice_size=slice_size,
            backup_dir=target,
            backup_every=every * 3600,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            release_vectors=not engine.settings.qdrant_url,
            index_threshold=0 if once else settings.index_threshold,  # builds take minutes
            on_run=report,
        )
        if metrics_port is not None:
            serve_metrics(engine, metrics_port, metrics_host)
            typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
        if once:
            run = runner.run_once()
            report(run)
            runner.lease.release()
            if run.errors:
                raise typer.Exit(1)
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        typer.echo(f"worker {runner.lease.owner} started (interval {interval}s)", err=True)
        try:
            runner.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()
        typer.echo("worker stopped", err=True)


def backup(
    ctx: typer.Context,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Default: the backup_dir setting, else DATA_DIR/backups."),
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Restore this set (or the newest in this folder) into a scratch place and "
            "cross-check it.",
        ),
    ] = None,
    list_sets: Annotated[
        bool, typer.Option("--list", help="List the sets in the backup folder, newest first.")
    ] = False,
    keep_daily: Annotated[int, KEEP_DAILY] = 7,
    keep_weekly: Annotated[int, KEEP_WEEKLY] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Write one backup set (SQL dump + vector snapshot + manifest), then apply retention."""

    if list_sets:
        _list_sets(to or settings(ctx).backup_root, as_json)
        return
    if verify is not None:
        from ...engine.backup import verify_backup

        verify = _chosen_set(verify)
        result = guarded(lambda: verify_backup(verify))
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
        else:
            typer.echo(
                f"{'ok' if result.ok else 'FAILED'}: {count(result.memories)} of "
                f"{plural(result.expected, 'memory')} restored, "
                f"identical: {'yes' if result.digest_matches else 'NO'}; "
                f"vectors from snapshot {result.restore.vectors_loaded}, re-embedded "
                f"{result.restore.reembedded}; problems after {result.problems_after}"
            )
            for note in result.restore.notes:
                typer.echo(f"note: {note}", err=True)
        if not result.ok:
            fail(f"backup set {verify} did not verify")
        return
    from ...engine.backup import apply_retention, create_backup

    with engine_session(ctx) as engine:
        root = to or engine.settings.backup_root
        made = create_backup(engine, root)
        removed = apply_retention(root, keep_daily, keep_weekly)
        manifest = made.manifest
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "path": str(made.path),
                        "manifest": manifest,
                        "removed": [str(p) for p in removed],
                    }
                )
            )
            return
        vectors = manifest["vectors"]
        typer.echo(str(made.path))
        typer.echo(
            f"{plural(manifest['counts']['memories'], 'memory')} "
            f"(highest id {manifest['max_memory_id']}), "
            + (
                f"{vectors['points']} vectors ({vectors['kind']})"
                if vectors
                else f"no vector snapshot ({manifest['vectors_note']})"
            ),
            err=True,
        )
        for path in removed:
            typer.echo(f"removed old set {path}", err=True)


def restore(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A backup set directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="MySQL/MariaDB: then replay the binlog up to this moment "
            "(e.g. '2026-12-01 10:30').",
        ),
    ] = None,
    binlog_from: Annotated[
        str | None,
        typer.Option(
            "--binlog-from",
            help="With --until: the server to read the binlog from (a database URL; default "
            "the target's) or a folder of binlog files.",
        ),
    ] = None,
) -> None:
    """Rebuild an empty database and vector store from a backup set (refuses non-empty ones);
    with --until, also replay the binlog after the set up to that moment."""
    from ...engine.backup import load_manifest, restore_backup

    directory = _chosen_set(directory)
    manifest = guarded(lambda: load_manifest(directory))  # refuse bad input before opening
    if binlog_from is not None and until is None:
        fail("--binlog-from needs --until")
    moment = None if until is None else guarded(lambda: _until(until, directory, manifest))
    with engine_session(ctx) as engine:
        replayed = None
        if moment is None:
            report = restore_backup(engine, directory)
        else:
            from ...engine.backup.binlog import restore_until

            report, replayed = guarded(
                lambda: restore_until(engine, directory, moment, binlog_from)
            )
        if as_json:
            out = report.to_dict()
            if replayed is not None:
                out["binlog"] = replayed.to_dict()
            typer.echo(json.dumps(out))
        else:
            typer.echo(
                f"restored {plural(report.memories, 'memory')}; vectors from snapshot "
                f"{report.vectors_loaded}, re-embedded {report.reembedded}, "
                f"removed {report.removed}"
            )
            if replayed is not None:
                typer.echo(
                    f"replayed the binlog up to {replayed.until}: "
                    f"{plural(replayed.transactions, 'transaction')} "
                    f"({plural(replayed.row_events, 'row event')}, "
                    f"{plural(replayed.statements, 'statement')}); left out "
                    f"{plural(replayed.skipped, 'statement')} of other tables or databases"
                )
                for ddl in replayed.skipped_ddl[:5]:
                    typer.echo(f"note: left out of the replay: {ddl}", err=True)
            for note in report.notes:
                typer.echo(f"note: {note}", err=True)
        if any(note.startswith("vector store unavailable") for note in report.notes):
            fail("restored the memories, but the vector store is unavailable")


def _chosen_set(path: Path) -> Path:
    """The set a path names: a set, or the newest set in a folder of them (said on stderr)."""
    from ...engine.backup.sets import resolve_set

    chosen, note = guarded(lambda: resolve_set(path))
    if note:
        notice(note)
    return chosen


def _list_sets(root: Path, as_json: bool) -> None:
    """``backup --list``: every complete set under ``root``, newest first."""
    from ...engine.backup.sets import describe_sets

    found = guarded(lambda: describe_sets(root))
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        notice(f"no backup sets in {root}")
    for item in found:
        typer.echo(
            f"{item['path']}  {item['created_at_iso']}  {plural(item['memories'], 'memory')}  "
            f"vectors: {item['vectors'] or 'none'}"
        )


def _until(text: str, directory: Path, manifest: dict[str, Any]) -> int:
    """``--until`` as Unix seconds, and the set's binlog position checked, before the
    target is opened."""
    from ...engine.backup.binlog import binlog_position, until_timestamp

    binlog_position(manifest, directory)
    return until_timestamp(text)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("worker")(worker)
    app.command("backup")(backup)
    app.command("restore")(restore)
