"""Probe: hostile input, full disks and clumsy hands against the ``ephemera`` command line.

Not collected by pytest (no ``test_`` prefix); run it by hand::

    python tests/hostile_probe.py                   # SQLite
    python tests/hostile_probe.py --mysql URL       # also MariaDB (a scratch database each run)
    python tests/hostile_probe.py --json out.json   # the raw outcomes too

Every case is bad input (or a hostile stored value that must be shown safely) and is sorted
into exactly one bucket, the first that applies:

- ``written`` - the command failed but memories were written anyway (or a restore target was
  left half-full);
- ``internal`` - "ephemera: internal error", a traceback, "Aborted!", a crash or a signal;
- ``silent`` - accepted although it should have been refused;
- ``leaked`` - succeeded, but raw terminal controls, a password or world-readable files came out;
- ``clean`` - one ``ephemera: error:`` line and nothing written, or (for output cases) a
  correct, safe answer.

Runs in-process through Typer's CliRunner (one process), except the full-disk cases, which
run real processes on a real nearly full tmpfs when this user may mount one.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RAW = ("\x1b", "\x07", "\x9b", "\u202e")
BUCKETS = ("clean", "internal", "silent", "written", "leaked")


@dataclass
class Outcome:
    surface: str
    case: str
    backend: str
    bucket: str
    detail: str = ""


@dataclass
class Probe:
    root: Path
    backend: str
    database_url: str
    results: list[Outcome] = field(default_factory=list)

    # ------------------------------------------------------------------ plumbing

    def env(self, **extra: str) -> dict[str, str]:
        config = self.root / "none.toml"
        if not config.exists():
            config.write_text("")
        base = {
            "EPHEMERA_DATA_DIR": str(self.root / "data"),
            "EPHEMERA_DATABASE_URL": self.database_url,
            "EPHEMERA_EMBEDDING_MODEL": "fake-hash-384",
            "EPHEMERA_CONFIG": str(config),
            "EPHEMERA_SERVICE": "off",
        }
        base.update(extra)
        return base

    def run(self, *args: str, stdin: bytes | str | None = None, **env: str) -> Any:
        from typer.testing import CliRunner

        from ephemera_tui.cli.main import app

        umask = os.umask(0o022)
        try:
            return CliRunner().invoke(app, list(args), env=self.env(**env), input=stdin)
        finally:
            os.umask(umask)

    def count(self) -> int:
        from ephemera_tui.engine import Engine, Settings

        with Engine(
            Settings(
                data_dir=self.root / "data",
                database_url=self.database_url,
                embedding_model="fake-hash-384",
            )
        ) as engine:
            return engine.count()

    def reset(self) -> None:
        """An empty journal for the next case."""
        from sqlalchemy import create_engine, text

        shutil.rmtree(self.root / "data", ignore_errors=True)
        if self.backend == "mysql":
            server, name = self.database_url.rsplit("/", 1)
            admin = create_engine(server + "/")
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            admin.dispose()

    def record(self, surface: str, case: str, bucket: str, detail: str = "") -> None:
        self.results.append(Outcome(surface, case, self.backend, bucket, detail[:300]))

    @staticmethod
    def crashed(result: Any) -> str | None:
        out = (result.stdout or "") + (result.stderr or "")
        exc = result.exception
        if exc is not None and not isinstance(exc, SystemExit):
            return f"{type(exc).__name__}: {exc}"
        for marker in ("internal error", "Traceback", "Aborted!"):
            if marker in out:
                return out.strip().splitlines()[-1]
        return None

    def refused(self, surface: str, case: str, result: Any, before: int | None = None) -> None:
        """Classify a case that must be refused, writing nothing."""
        after = self.count() if before is not None else 0
        crash = self.crashed(result)
        err = (result.stderr or "").strip()
        before = 0 if before is None else before
        if after != before and result.exit_code != 0:
            self.record(surface, case, "written", f"{after - before} rows; {crash or err}")
        elif crash:
            self.record(surface, case, "internal", crash)
        elif result.exit_code == 0:
            detail = f"{after - before} rows" if after != before else ""
            self.record(surface, case, "silent", detail)
        elif err.startswith("ephemera: error: ") and len(err.splitlines()) == 1:
            self.record(surface, case, "clean", err)
        else:
            self.record(surface, case, "internal", err or f"exit {result.exit_code}")

    def answered_safely(self, surface: str, case: str, result: Any, secret: str = "") -> None:
        """Classify a case that must succeed (or fail cleanly) without raw controls/secrets."""
        crash = self.crashed(result)
        out = (result.stdout or "") + (result.stderr or "")
        if crash:
            self.record(surface, case, "internal", crash)
        elif any(ch in out for ch in RAW):
            self.record(surface, case, "leaked", "raw terminal control in the output")
        elif secret and secret in out:
            self.record(surface, case, "leaked", "password printed")
        elif result.exit_code not in (0, 1):
            self.record(surface, case, "internal", f"exit {result.exit_code}")
        else:
            self.record(surface, case, "clean")

    # ------------------------------------------------------------------ surfaces

    def imports(self) -> None:
        bad = _bad_lines()
        for name, line in bad.items():
            for skip in (False, True):
                self.reset()
                path = self.root / "in.jsonl"
                good = [json.dumps({"content": f"good {i}"}) for i in range(300)]
                path.write_bytes(("\n".join(good) + "\n").encode() + line + b"\n")
                args = ["import", *(["--skip-bad"] if skip else []), str(path)]
                result = self.run(*args)
                surface = "import --skip-bad" if skip else "import"
                if name in ACCEPTED:  # must be written whole, with or without --skip-bad
                    written, crash = self.count(), self.crashed(result)
                    if crash:
                        self.record(surface, name, "written" if written else "internal", crash)
                    elif result.exit_code != 0 or written != 301:
                        bucket = "written" if written else "internal"
                        self.record(surface, name, bucket, f"{written} rows; {result.stderr}")
                    else:
                        self.record(surface, name, "clean")
                    continue
                if not skip:
                    self.refused(surface, name, result, before=0)
                    continue
                written, crash = self.count(), self.crashed(result)
                if written == 301 and result.exit_code == 0:
                    self.record(surface, name, "silent", "the bad line was imported")
                elif written not in (0, 300):
                    self.record(surface, name, "written", f"{written} rows; {crash}")
                elif crash:
                    self.record(surface, name, "internal", crash)
                elif written == 300 and result.exit_code == 0:
                    accepted = "invalid 1" not in result.stdout
                    self.record(surface, name, "silent" if accepted else "clean")
                else:
                    self.refused(surface, name, result, before=0)

    def stdin_import(self) -> None:
        cases: dict[str, bytes] = {
            "not UTF-8": b'{"content": "\xff\xfe"}\n',
            "lone surrogate": b'{"content": "\\ud800"}\n',
            "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000 + b"\n",
        }
        for name, body in cases.items():
            self.reset()
            self.refused("import -", name, self.run("import", "-", stdin=body), before=0)
        self.reset()
        scratch = Path(tempfile.mkdtemp(prefix="probe-tmp-"))
        saved = tempfile.tempdir
        tempfile.tempdir = str(scratch)
        try:
            result = self.run("import", "-", stdin=b'{"content": "secret diary"}\n')
        finally:
            tempfile.tempdir = saved
        left = list(scratch.iterdir())
        shutil.rmtree(scratch, ignore_errors=True)
        if self.crashed(result):
            self.record("import -", "copy of stdin in /tmp", "internal", str(self.crashed(result)))
        elif left:
            self.record("import -", "copy of stdin in /tmp", "leaked", f"{left[0].name} left")
        else:
            self.record("import -", "copy of stdin in /tmp", "clean")

    def adds(self) -> None:
        cases: dict[str, list[str]] = {
            "argv content not UTF-8": ["add", "\udcff"],
            "argv note not UTF-8": ["add", "x", "--note", "\udcff"],
            "argv tag not UTF-8": ["add", "x", "--tag", "\udcff"],
            "argv source not UTF-8": ["add", "x", "--source", "\udcff"],
            "ESC in a tag": ["add", "x", "--tag", "a\x1b[31m"],
            "BEL/OSC in a source": ["add", "x", "--source", "s\x1b]0;t\x07"],
            "C1 CSI in a tag": ["add", "x", "--tag", "\x9b2J"],
            "U+202E in a source": ["add", "x", "--source", "a\u202eb"],
            "--at -99999999999999": ["add", "x", "--at", "-99999999999999"],
            "--at 0001-01-01": ["add", "x", "--at", "0001-01-01"],
            "--at 2024-13-01": ["add", "x", "--at", "2024-13-01"],
            "--importance 256": ["add", "x", "--importance", "256"],
            "--link to a missing memory": ["add", "x", "--link", "12345"],
            "empty content": ["add", "   "],
        }
        for name, args in cases.items():
            self.reset()
            self.refused("add", name, self.run(*args), before=0)
        self.reset()
        big = "x" * ((1 << 20) + 1)
        self.refused("add", "content over 1 MiB", self.run("add", "-", stdin=big), before=0)
        self.reset()
        first = self.run("add", "x", "--tag", "Work", "--tag", "work")
        if self.crashed(first):
            self.record("add", "tags Work and work", "internal", str(self.crashed(first)))
        elif first.exit_code != 0:
            self.record("add", "tags Work and work", "internal", first.stderr.strip())
        else:
            self.record("add", "tags Work and work", "clean")

    def searches(self) -> None:
        self.reset()
        self.run("add", "a memory about lakes")
        cases = {
            "argv query not UTF-8": "\udcff",
            "on:0001-01-01": "lake on:0001-01-01",
            "after:0000": "lake after:0000",
            "on:9999-12-31": "lake on:9999-12-31",
            "fts syntax": 'lake" OR * NEAR(',
            "only controls": "\x1b[2J\x07",
        }
        for name, query in cases.items():
            self.answered_safely("search", name, self.run("search", query))
        path = self.root / "queries.txt"
        path.write_bytes(b"lake\n\xff\xfe\n")
        result = self.run("search", "--queries", str(path))
        self.answered_safely("search --queries", "a line not UTF-8", result)

    def outputs(self) -> None:
        self.reset()
        memory_id = _poison(self)
        for surface, args in {
            "show": ["show", str(memory_id)],
            "search": ["search", "line"],
            "export --format markdown": ["export", "--format", "markdown"],
            "report": ["report"],
            "show --json": ["show", str(memory_id), "--json"],
            "search --json": ["search", "line", "--json"],
        }.items():
            self.answered_safely(surface, "ESC/BEL/OSC/C1/U+202E stored", self.run(*args))

    def files(self) -> None:
        self.reset()
        self.run("add", "x")
        for name, target in {
            "export -o a missing dir": self.root / "no" / "x.md",
            "export -o a dir": self.root,
        }.items():
            self.refused("export", name, self.run("export", "-o", str(target)))
        plain = self.root / "plain.txt"
        plain.write_text("x")
        for name, target in {
            "backup --to a file": plain,
            "backup --to /proc": Path("/proc/x"),
        }.items():
            self.refused("backup", name, self.run("backup", "--to", str(target)))

    def links(self) -> None:
        self.reset()
        a = self.run("add", "a").stdout.strip()
        b = self.run("add", "b").stdout.strip()
        self.refused("link", "--remove an unknown id", self.run("link", "--remove", a, "999"))
        self.refused("link", "--remove memories not linked", self.run("link", "--remove", a, b))

    def settings(self) -> None:
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "rrf_k -1": ([], {"EPHEMERA_RRF_K": "-1"}),
            "hnsw_ef -5": ([], {"EPHEMERA_HNSW_EF": "-5"}),
            "embedding_cache_size -1": ([], {"EPHEMERA_EMBEDDING_CACHE_SIZE": "-1"}),
            "index_threshold 1e999": ([], {"EPHEMERA_INDEX_THRESHOLD": "1e999"}),
            "semantic_weight nan": ([], {"EPHEMERA_SEMANTIC_WEIGHT": "nan"}),
            "EPHEMERA_KEYS=garbage": ([], {"EPHEMERA_KEYS": "garbage"}),
            "sqlite:// in memory": (["--database-url", "sqlite://"], {}),
            "mysql:// without driver": (["--database-url", "mysql://root@127.0.0.1/x"], {}),
            "URL without a database": (["--database-url", "mysql+pymysql://root@127.0.0.1"], {}),
            "bad charset": (
                ["--database-url", "mysql+pymysql://root@127.0.0.1/x?charset=bogus"],
                {},
            ),
            "unknown URL argument": (
                ["--database-url", "mysql+pymysql://root@127.0.0.1/x?foo=bar"],
                {},
            ),
            "data dir is a file": (["--data-dir", str(self._plain())], {}),
        }
        for name, (flags, extra) in cases.items():
            self.refused("settings", name, self.run(*flags, "stats", **extra))
        meili = self.root / "meili.toml"
        meili.write_text('[migration.meilisearch]\nurl = "http://127.0.0.1:9"\nbogus = 1\n')
        self.refused(
            "settings",
            "unknown key in [migration.meilisearch]",
            self.run("migrate", "meili", "status", EPHEMERA_CONFIG=str(meili)),
        )
        self.reset()
        self.refused(
            "migrate meili",
            "finish with nothing configured",
            self.run("migrate", "meili", "finish"),
        )

    def _plain(self) -> Path:
        path = self.root / "a-file"
        path.write_text("x")
        return path

    def backups(self) -> None:
        defects: dict[str, Callable[[dict[str, Any]], None]] = {
            "files as a list": lambda m: m.update(files=list(m["files"])),
            "an entry without bytes": lambda m: next(iter(m["files"].values())).pop("bytes"),
            "sql without kind": lambda m: m["sql"].pop("kind"),
            "counts as a list": lambda m: m.update(counts=[1]),
        }
        for name, change in defects.items():
            made = self._made_set()
            manifest = json.loads((made / "manifest.json").read_text())
            change(manifest)
            (made / "manifest.json").write_text(json.dumps(manifest))
            self._restore_case(f"manifest: {name}", made)
        snapshots: dict[str, Callable[[list[str], bytes], bytes]] = {
            "a broken JSON line": lambda lines, _: _gz([*lines[:-1], lines[-1][:-4]]),
            "a non-integer id": lambda lines, _: _gz(
                [*lines[:-1], json.dumps({**json.loads(lines[-1]), "id": "x"})]
            ),
            "a missing field": lambda lines, _: _gz(
                [*lines[:-1], json.dumps({"id": json.loads(lines[-1])["id"]})]
            ),
            "a truncated gzip": lambda _, raw: raw[: len(raw) // 2],
        }
        for name, broken in snapshots.items():
            made = self._made_set()
            raw = (made / "vectors.jsonl.gz").read_bytes()
            with gzip.open(made / "vectors.jsonl.gz", "rt") as handle:
                lines = handle.read().splitlines()
            _rewrite(made, "vectors.jsonl.gz", broken(lines, raw))
            self._restore_case(f"snapshot: {name}", made)
        made = self._made_set()
        self.reset()
        result = self.run("restore", str(made.parent))
        if self.crashed(result):
            self.record("restore", "a folder of sets", "internal", str(self.crashed(result)))
        elif result.exit_code != 0:
            self.record("restore", "a folder of sets", "internal", result.stderr.strip())
        else:
            self.record("restore", "a folder of sets", "clean")
        listed = self.run("backup", "--list", "--to", str(made.parent))
        bucket = "clean" if listed.exit_code == 0 and made.name in listed.stdout else "internal"
        self.record("backup", "--list", bucket, (listed.stderr or "").strip())

    def _made_set(self) -> Path:
        self.reset()
        for i in range(3):
            self.run("add", f"memory {i}")
        sets = self.root / "sets" / uuid.uuid4().hex[:6]
        result = self.run("backup", "--to", str(sets))
        return Path(result.stdout.strip().splitlines()[0])

    def _restore_case(self, name: str, made: Path) -> None:
        self.reset()
        result = self.run("restore", str(made))
        after = self.count()
        crash = self.crashed(result)
        if result.exit_code != 0 and after:
            self.record("restore", name, "written", f"{after} rows left; {crash or result.stderr}")
        elif crash:
            self.record("restore", name, "internal", crash)
        elif result.exit_code == 0:
            self.record("restore", name, "silent", result.stderr.strip())
        else:
            self.refused("restore", name, result)

    def privacy(self) -> None:
        self.reset()
        self.run("add", "private")
        self.run("backup")
        loose = [
            p
            for p in [self.root / "data", *(self.root / "data").rglob("*")]
            if stat.S_IMODE(p.stat().st_mode) & 0o077
        ]
        self.record(
            "files",
            "modes under umask 022",
            "leaked" if loose else "clean",
            ", ".join(p.name for p in loose[:5]),
        )
        self.reset()
        secret = "hunter2secret"
        url = f"http://reader:{secret}@127.0.0.1:9"
        for args in (
            ["add", "x"],
            ["search", "x"],
            ["stats"],
            ["stats", "--json"],
            ["sync"],
            ["check"],
            ["backup", "--json"],
        ):
            result = self.run("--qdrant-url", url, *args)
            self.answered_safely("qdrant password", " ".join(args), result, secret=secret)
        stored = [
            p
            for p in (self.root / "data").rglob("*")
            if p.is_file() and secret.encode() in p.read_bytes()
        ]
        self.record(
            "qdrant password",
            "stored in files",
            "leaked" if stored else "clean",
            ", ".join(p.name for p in stored[:3]),
        )

    def post_commit(self) -> None:
        """An unreadable models dir or vectors dir: the add must still print its id."""
        from ephemera_tui.engine import core
        from ephemera_tui.engine.vectors import manager

        def unreadable(*_: Any, **__: Any) -> Any:
            raise PermissionError(13, "Permission denied", "/models")

        for name, target, attribute in (
            ("models dir unreadable", core, "load_embedder"),
            ("vectors dir unreadable", manager, "open_vectors"),
        ):
            self.reset()
            saved = getattr(target, attribute)
            setattr(target, attribute, unreadable)
            try:
                result = self.run("add", "walked by the lake")
                search = self.run("search", "lake")
            finally:
                setattr(target, attribute, saved)
            written, crash = self.count(), self.crashed(result)
            if written and (crash or result.exit_code != 0):
                self.record("add", name, "written", f"saved but {crash or result.stderr.strip()}")
            elif crash:
                self.record("add", name, "internal", crash)
            else:
                ok = "lake" in search.stdout and search.exit_code == 0
                self.record("add", name, "clean" if ok else "internal", search.stderr.strip())


# ---------------------------------------------------------------------------- full disk


def full_disk(root: Path, results: list[Outcome]) -> None:
    """Real processes on a 16 MiB tmpfs filled to the last block."""
    mount = root / "full"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"full-disk cases skipped: {done.stderr.decode().strip()}", file=sys.stderr)
        return
    try:
        (root / "none.toml").write_text("")
        env = dict(os.environ)
        env.update(
            EPHEMERA_DATA_DIR=str(mount / "data"),
            EPHEMERA_DATABASE_URL=f"sqlite:///{mount / 'data' / 'ephemera.db'}",
            EPHEMERA_EMBEDDING_MODEL="fake-hash-384",
            EPHEMERA_CONFIG=str(root / "none.toml"),
            EPHEMERA_SERVICE="off",
            EPHEMERA_MIN_FREE_MB="64",
        )
        cli = [sys.executable, "-m", "ephemera_tui.cli"]
        subprocess.run([*cli, "stats"], env=env, capture_output=True, check=False)
        # Fill the filesystem, then give back 512 KiB: room for SQLite's commit, none for
        # the vector store's mapped segments (a page it cannot back is SIGBUS).
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 4096):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - (512 << 10)))
        finally:
            os.close(fd)
        for name, args in (
            ("add", ["add", "on a full disk"]),
            ("sync", ["sync"]),
            ("backup", ["backup"]),
        ):
            before = _sqlite_count(mount / "data" / "ephemera.db")
            proc = subprocess.run([*cli, *args], env=env, capture_output=True, text=True)
            after = _sqlite_count(mount / "data" / "ephemera.db")
            err = proc.stderr.strip()
            if proc.returncode < 0:
                bucket, detail = "internal", f"killed by signal {-proc.returncode}"
            elif "internal error" in err or "Traceback" in err:
                bucket, detail = "internal", err.splitlines()[-1]
            elif proc.returncode != 0 and after != before:
                bucket, detail = "written", f"committed but reported failure: {err}"
            elif name == "add" and proc.returncode == 0 and not proc.stdout.strip():
                bucket, detail = "silent", "no id printed"
            else:
                bucket, detail = "clean", err.splitlines()[-1] if err else proc.stdout.strip()
            results.append(Outcome("full disk", name, "sqlite", bucket, detail[:300]))
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _sqlite_count(path: Path) -> int | None:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM memory_fragments").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


# ---------------------------------------------------------------------------- helpers


def _bad_lines() -> dict[str, bytes]:
    return {
        "surrogate in content": b'{"content": "bad \\ud800"}',
        "surrogate in a tag": b'{"content": "x", "tags": ["\\udfff"]}',
        "created_at 1e25": b'{"content": "x", "created_at": 1e25}',
        "created_at -99999999999999": b'{"content": "x", "created_at": -99999999999999}',
        "id 2^63": b'{"content": "x", "id": 9223372036854775808}',
        "content 2 MiB": json.dumps({"content": "x" * (2 << 20)}).encode(),
        "importance as text": b'{"content": "x", "importance": "high"}',
        "importance 256": b'{"content": "x", "importance": 256}',
        "tags as text": b'{"content": "x", "tags": "a,b"}',
        "ESC in a tag": b'{"content": "x", "tags": ["a\\u001b[31m"]}',
        "U+202E in a source": b'{"content": "x", "source": "a\\u202eb"}',
        "NaN": b'{"content": "x", "importance": NaN}',
        "Infinity": b'{"content": "x", "created_at": Infinity}',
        "5000 digits": b'{"content": "x", "importance": ' + b"9" * 5000 + b"}",
        "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
        "not UTF-8": b'{"content": "\xff"}',
        "link to a missing id": b'{"content": "x", "associations": [424242]}',
        "tags Work and work (MariaDB)": b'{"content": "x", "tags": ["Work", "work"]}',
    }


# Lines that are fine and must be imported whole (MariaDB's collation refused them).
ACCEPTED = frozenset({"tags Work and work (MariaDB)"})


def _poison(probe: Probe) -> int:
    from sqlalchemy import text

    from ephemera_tui.engine import Engine, Settings

    hostile = "line one \x1b]0;owned\x07 \x1b[2J\nline two \u202eevil\x9b31m"
    memory_id = int(probe.run("add", hostile, "--note", "n \x1b[5m", "--tag", "t").stdout)
    settings = Settings(
        data_dir=probe.root / "data",
        database_url=probe.database_url,
        embedding_model="fake-hash-384",
    )
    with Engine(settings) as engine, engine.store.write() as conn:
        conn.execute(
            text("UPDATE memory_fragments SET source = :s, tags = :t WHERE id = :i"),
            {"s": "d\x1b]2;x\x07", "t": json.dumps(["t\x1b[31m", "u\u202e"]), "i": memory_id},
        )
    return memory_id


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _rewrite(set_dir: Path, name: str, data: bytes) -> None:
    (set_dir / name).write_bytes(data)
    manifest = json.loads((set_dir / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (set_dir / "manifest.json").write_text(json.dumps(manifest))


@contextlib.contextmanager
def _scratch_mysql(server: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"ephemera_probe_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.rstrip("/") + "/")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield f"{server.rstrip('/')}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def table(results: list[Outcome]) -> str:
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        rows[r.surface][r.bucket] += 1
    total: Counter[str] = Counter()
    lines = ["| surface | tried | " + " | ".join(BUCKETS) + " |", "|---" * (len(BUCKETS) + 2) + "|"]
    for surface, counts in rows.items():
        total.update(counts)
        tried = sum(counts.values())
        lines.append(
            f"| {surface} | {tried} | " + " | ".join(str(counts[b]) for b in BUCKETS) + " |"
        )
    lines.append(
        f"| **all** | {sum(total.values())} | " + " | ".join(str(total[b]) for b in BUCKETS) + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql", help="a MariaDB/MySQL server URL without database")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    parser.add_argument("--no-disk", action="store_true", help="skip the full-disk cases")
    args = parser.parse_args()
    import logging

    logging.disable(logging.CRITICAL)
    results: list[Outcome] = []
    backends = [("sqlite", None)] + ([("mysql", args.mysql)] if args.mysql else [])
    for backend, server in backends:
        with tempfile.TemporaryDirectory(prefix="ephemera-probe-") as tmp:
            root = Path(tmp)
            with contextlib.ExitStack() as stack:
                url = (
                    f"sqlite:///{root / 'data' / 'ephemera.db'}"
                    if server is None
                    else stack.enter_context(_scratch_mysql(server))
                )
                probe = Probe(root, backend, url)
                surfaces = [
                    probe.imports,
                    probe.stdin_import,
                    probe.adds,
                    probe.searches,
                    probe.outputs,
                    probe.files,
                    probe.links,
                    probe.backups,
                    probe.post_commit,
                ]
                if backend == "sqlite":
                    surfaces += [probe.settings, probe.privacy]
                for surface in surfaces:
                    try:
                        surface()
                    except Exception as exc:  # noqa: BLE001 - the probe itself keeps going
                        probe.record(surface.__name__, "probe step", "internal", repr(exc))
                results += probe.results
    if not args.no_disk:
        with tempfile.TemporaryDirectory(prefix="ephemera-probe-disk-") as tmp:
            full_disk(Path(tmp), results)
    print(table(results))
    for r in results:
        if r.bucket != "clean":
            print(f"  {r.bucket:8} {r.backend:6} {r.surface}: {r.case}: {r.detail}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))


if __name__ == "__main__":
    main()
