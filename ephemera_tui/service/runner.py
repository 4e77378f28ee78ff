"""Running the resident engine: where its socket lives, taking over a stale one, serving on
a Unix socket (mode 0600) and optionally TCP, in the foreground (``ephemera serve``) or on a
thread of the app.

The socket is ``<data_dir>/ephemera.sock``; when that path is too long for a Unix socket it
lives in the runtime dir instead, and ``<data_dir>/service.json`` always says where (with the
pid and protocol), so clients find it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.errors import ConfigError, EphemeraError
from . import wire

if TYPE_CHECKING:
    from ..engine.core import Engine

log = logging.getLogger(__name__)

SOCKET_NAME = "ephemera.sock"
INFO_NAME = "service.json"
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def socket_path(data_dir: Path) -> Path:
    """Where the service for ``data_dir`` listens."""
    wanted = data_dir / SOCKET_NAME
    if len(str(wanted)) <= MAX_UNIX_PATH:
        return wanted
    digest = hashlib.blake2b(str(data_dir.resolve()).encode(), digest_size=8).hexdigest()
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return runtime / f"ephemera-{os.getuid()}-{digest}.sock"


def info_path(data_dir: Path) -> Path:
    return data_dir / INFO_NAME


def read_info(data_dir: Path) -> dict[str, Any] | None:
    """What a running (or crashed) service wrote about itself, or None."""
    try:
        data = json.loads(info_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, readable by this user only. A stale socket left by
    a killed service is replaced; a live one means another service already serves."""
    if path.exists() or path.is_symlink():
        if _answers(path):
            raise EphemeraError(f"another ephemera service already listens on {path}")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EphemeraError(f"another ephemera service already listens on {path}") from exc
        raise EphemeraError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    sock.setblocking(False)
    return sock


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) into its parts; ConfigError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


@dataclass
class Service:
    """One resident engine serving ``engine``: a Unix socket and optionally TCP."""

    engine: Engine
    listen: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if self.listen:
            host, _ = parse_listen(self.listen)
            if not is_loopback(host) and not self.token:
                raise ConfigError(
                    f"--listen {self.listen}: refusing to listen beyond loopback without a "
                    "token (set service_token or EPHEMERA_SERVICE_TOKEN)"
                )
        self.path = socket_path(self.engine.settings.data_dir)
        self._servers: list[Any] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        # Which service wrote service.json: the pid alone cannot tell two services of one
        # process apart (an app that restarts its service, tests).
        self._instance = secrets.token_hex(8)

    async def serve(self) -> None:
        """Serve until :meth:`stop` (or a signal in the foreground)."""
        import uvicorn

        from .server import build_app

        app = build_app(self.engine, token=self.token)
        sock = bind_unix(self.path)
        self._write_info()
        configs = [uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")]
        sockets: list[list[socket.socket]] = [[sock]]
        if self.listen:
            host, port = parse_listen(self.listen)
            configs.append(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    log_level="warning",
                    lifespan="off",
                    ws="websockets-sansio",
                )
            )
            sockets.append([])
        self._servers = [uvicorn.Server(c) for c in configs]
        self._loop = asyncio.get_running_loop()
        self._started.set()
        try:
            await asyncio.gather(
                *(
                    server.serve(sockets=socks or None)
                    for server, socks in zip(self._servers, sockets, strict=True)
                )
            )
        finally:
            sock.close()
            self._cleanup()

    def _write_info(self) -> None:
        info = {
            "socket": str(self.path),
            "pid": os.getpid(),
            "instance": self._instance,
            "protocol": wire.PROTOCOL_VERSION,
            "listen": self.listen,
        }
        target = info_path(self.engine.settings.data_dir)
        tmp = target.with_suffix(".tmp")
        old = os.umask(0o177)
        try:
            tmp.write_text(json.dumps(info), encoding="utf-8")
            os.replace(tmp, target)
        finally:
            os.umask(old)

    def _cleanup(self) -> None:
        """Remove the socket and service.json, unless another service has replaced them."""
        info = read_info(self.engine.settings.data_dir)
        if info and info.get("instance") == self._instance:
            with contextlib.suppress(OSError):
                info_path(self.engine.settings.data_dir).unlink()
            with contextlib.suppress(OSError):
                self.path.unlink()

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Serve on a daemon thread (the app's way); raises if it could not start."""

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                self._error = exc
                self._started.set()

        self._thread = threading.Thread(target=run, name="ephemera-service", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        if self._error is not None:
            raise self._error

    @property
    def running(self) -> bool:
        """Whether the thread started by :meth:`start_in_thread` still serves."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and remove the socket (only if it is still ours)."""
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the service thread did not stop within %.0f s", timeout)
        self._cleanup()
