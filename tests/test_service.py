"""The resident engine: the journal calls over its socket, conflicts, the change feed, the
embeddings endpoint, bad requests, and real processes sharing one data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ephemera_tui.engine import Draft, Engine, Settings
from ephemera_tui.engine.errors import ConflictError, EphemeraError, NotFoundError
from ephemera_tui.service.client import find_service
from ephemera_tui.service.runner import Service, bind_unix, socket_path
from ephemera_tui.service.wire import PROTOCOL_VERSION
from tests.helpers import EPHEMERA, run_ephemera


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[Engine, Service]]:
    engine = Engine(settings)
    service = Service(engine)
    service.start_in_thread()
    try:
        yield engine, service
    finally:
        service.stop()
        engine.close()


def raw(path: Path, method: str, target: str, body: bytes = b"", headers: str = "") -> str:
    """One HTTP/1.1 exchange over the socket, as a hostile or foreign client would send it."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{headers}\r\n".encode()
            + body
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_calls_answer_like_the_engine(served: tuple[Engine, Service], settings: Settings) -> None:
    engine, service = served
    client = find_service(settings.data_dir)
    assert client is not None
    with client:
        first = client.add(Draft(content="booked the flights to Lisbon", tags=("trip",)))
        engine.add(Draft(content="the dentist moved to friday"))
        assert client.get(first.id) == engine.get(first.id)
        ours, theirs = client.search("lisbon flights"), engine.search("lisbon flights")
        assert [h.memory.id for h in ours.hits] == [h.memory.id for h in theirs.hits]
        assert ours.mode == "hybrid"
        assert client.count() == 2 and client.stats().memories == 2
        assert client.get_many([first.id]) == {first.id: engine.get(first.id)}
        with pytest.raises(NotFoundError):
            client.get(1)
        with pytest.raises(EphemeraError, match="unknown activity unit"):
            client.activity("fortnight")


def test_a_stale_edit_is_refused_with_the_newer_text(
    served: tuple[Engine, Service], settings: Settings
) -> None:
    engine, _ = served
    memory = engine.add(Draft(content="first words"))
    client = find_service(settings.data_dir)
    assert client is not None
    with client:
        newer = client.update(memory.id, Draft(content="their edit"), expected_revision=1)
        assert newer.revision == 2
        with pytest.raises(ConflictError) as refused:
            engine.update(memory.id, Draft(content="my edit"), expected_revision=1)
        assert refused.value.current.content == "their edit"  # type: ignore[attr-defined]
        with pytest.raises(ConflictError):
            client.delete(memory.id, expected_revision=1)
    assert engine.get(memory.id).content == "their edit"


def test_the_feed_resumes_from_a_sequence_number(
    served: tuple[Engine, Service], settings: Settings
) -> None:
    from websockets.sync.client import unix_connect

    engine, service = served
    ids = [engine.add(Draft(content=f"memory {n}")).id for n in range(3)]
    with unix_connect(str(service.path), "ws://ephemera/v1/changes?since=0") as ws:
        seen = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
    assert [s["memory_id"] for s in seen] == ids and [s["op"] for s in seen] == ["add"] * 3
    last = seen[1]["seq"]
    engine.update(ids[0], Draft(content="changed"))
    engine.delete(ids[1])
    with unix_connect(str(service.path), f"ws://ephemera/v1/changes?since={last}") as ws:
        resumed = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
        engine.add(Draft(content="arrives while listening"))
        live = json.loads(ws.recv(timeout=10))
    seqs = [r["seq"] for r in resumed] + [live["seq"]]
    assert seqs == sorted(seqs) and seqs[0] == last + 1  # no gap, no repeat
    assert [r["op"] for r in resumed] == ["add", "update", "delete"] and live["op"] == "add"


def test_embeddings_endpoint_speaks_openai(served: tuple[Engine, Service]) -> None:
    engine, service = served
    body = json.dumps({"input": ["a walk by the lake", "tax return"], "model": engine.model_name})
    answer = raw(service.path, "POST", "/v1/embeddings", body.encode())
    data = json.loads(answer.split("\r\n\r\n", 1)[1])
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert len(data["data"][0]["embedding"]) == engine.embedder.dim
    assert data["object"] == "list" and data["model"] == engine.model_name


def test_bad_requests_get_a_clear_4xx(served: tuple[Engine, Service]) -> None:
    _, service = served
    proto = f"ephemera-protocol: {PROTOCOL_VERSION}\r\n"
    cases = [
        ("/v1/call/add", b"{not json", proto, "400"),
        ("/v1/call/add", b'{"args": {"draft": {"$": "Draft", "content": ""}}}', proto, "400"),
        ("/v1/call/add", b'{"args": {"nonsense": 1}}', proto, "400"),
        ("/v1/call/drop_everything", b"{}", proto, "404"),
        ("/v1/call/count", b"{}", "ephemera-protocol: 99\r\n", "426"),
        ("/v1/call/count", b"{}", "", "426"),
        ("/v1/embeddings", b'{"input": 5}', "", "400"),
        ("/v1/call/get", b'{"args": {"memory_id": 1}}', proto, "404"),
    ]
    for target, body, headers, status in cases:
        answer = raw(service.path, "POST", target, body, headers)
        line = answer.split("\r\n", 1)[0]
        assert status in line, (target, body, answer[:300])
        error = json.loads(answer.split("\r\n\r\n", 1)[1])["error"]
        assert error["message"] and "\n" not in error["message"]


def test_token_socket_mode_and_stale_socket(settings: Settings, tmp_path: Path) -> None:
    with Engine(settings) as engine:
        service = Service(engine, token="s3cret")
        service.start_in_thread()
        try:
            mode = stat.S_IMODE(os.stat(service.path).st_mode)
            assert mode == 0o600
            answer = raw(service.path, "GET", "/v1/health")
            assert " 401 " in answer.split("\r\n", 1)[0]
            assert find_service(settings.data_dir, token="s3cret") is not None
            with pytest.raises(Exception, match="already listens"):
                bind_unix(service.path)
        finally:
            service.stop()
    # A socket file left by a killed service is replaced, not refused.
    stale = socket_path(tmp_path / "stale")
    stale.parent.mkdir(parents=True, exist_ok=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(stale))
    dead.close()
    bind_unix(stale).close()


def test_refuses_to_listen_beyond_loopback_without_a_token(settings: Settings) -> None:
    with Engine(settings) as engine, pytest.raises(Exception, match="token"):
        Service(engine, listen="0.0.0.0:8765")


# ---------------------------------------------------------------------------- real processes


def _start_service(env: dict[str, str], data: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*EPHEMERA, "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if find_service(data) is not None:
            return proc
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the service did not start")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ephemera(*args, env=env)


@pytest.mark.slow
def test_processes_share_one_service(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = Path(cli_env["EPHEMERA_DATA_DIR"])
    for text in ("Booked the flights to Lisbon for May", "Dentist moved to Friday"):
        assert _cli(cli_env, "add", text).returncode == 0
    service = _start_service(cli_env, data)
    try:
        a = _cli(cli_env, "search", "flights", "--json")
        b = _cli(cli_env, "search", "flights", "--json")
        assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
        assert "keyword results only" not in a.stderr + b.stderr
        assert json.loads(a.stdout) == json.loads(b.stdout) and json.loads(a.stdout)
        memory = json.loads(a.stdout)[0]
        # An edit in one process reaches the others; a stale edit is refused.
        assert (
            _cli(cli_env, "edit", str(memory["id"]), "--content", "flights moved").returncode == 0
        )
        shown = json.loads(_cli(cli_env, "show", str(memory["id"]), "--json").stdout)
        assert shown["content"] == "flights moved" and shown["revision"] == 2
        stale = _cli(cli_env, "edit", str(memory["id"]), "--content", "mine", "--revision", "1")
        assert stale.returncode == 1 and "changed elsewhere" in stale.stderr
        # stats reports the figures of the process that holds the vectors (this one could
        # not open the shard the service holds, and so showed no point count).
        stats = _cli(cli_env, "stats", "--json")
        assert stats.returncode == 0, stats.stderr
        figures = json.loads(stats.stdout)
        assert figures["vectors"] == figures["memories"] == 2
        assert figures["vector_status"] == "ok" and figures["metrics"]
    finally:
        service.terminate()
        service.wait(30)
    assert find_service(data) is None  # it cleaned up after itself
    assert _cli(cli_env, "search", "flights").returncode == 0  # in-process again


@pytest.mark.slow
def test_kill_9_during_writes_loses_nothing_acknowledged(cli_env: dict[str, str]) -> None:
    data = Path(cli_env["EPHEMERA_DATA_DIR"])
    service = _start_service(cli_env, data)
    acknowledged: list[int] = []
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import subprocess, sys\n"
                "for n in range(40):\n"
                "    r = subprocess.run(sys.argv[1:] + ['add', f'w{w} note {n}'], "
                "capture_output=True, text=True)\n"
                "    if r.returncode == 0: print(r.stdout.strip(), flush=True)\n".replace(
                    "{w}", str(w)
                ),
                *EPHEMERA,
            ],
            env=cli_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    time.sleep(4)
    service.send_signal(signal.SIGKILL)
    service.wait()
    for writer in writers:
        out, _ = writer.communicate(timeout=600)
        acknowledged.extend(int(line) for line in out.split() if line.isdigit())
    assert acknowledged
    check = _cli(cli_env, "check", "--repair")
    assert check.returncode == 0, check.stdout + check.stderr
    exported = [json.loads(line) for line in _cli(cli_env, "export").stdout.splitlines()]
    ids = [m["id"] for m in exported]
    assert set(acknowledged) <= set(ids)  # nothing acknowledged was lost
    contents = [m["content"] for m in exported]
    assert len(contents) == len(set(contents))  # nothing written twice
    assert _cli(cli_env, "check").returncode == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_engine_embeds_through_another_hosts_service(settings: Settings, tmp_path: Path) -> None:
    from dataclasses import replace

    import numpy as np

    port = _free_port()
    with Engine(settings) as host:
        service = Service(host, listen=f"127.0.0.1:{port}")
        service.start_in_thread()
        try:
            remote = replace(
                settings,
                data_dir=tmp_path / "other-host",
                database_url=None,
                embedding_url=f"http://127.0.0.1:{port}",
            )
            with Engine(remote) as other:
                assert other.embedder.dim == host.embedder.dim
                mine = other.embedder.embed(["a walk by the lake"])[0]
                theirs = host.embedder.embed(["a walk by the lake"])[0]
                assert np.allclose(mine, theirs, atol=1e-6)
                memory = other.add(Draft(content="embedded elsewhere"))
                assert other.pending() == 0
                assert other.search("embedded elsewhere").hits[0].memory.id == memory.id
        finally:
            service.stop()


def test_a_second_engine_searches_through_the_service_then_takes_over(
    settings: Settings,
) -> None:
    from ephemera_tui.engine.compose import open_engine
    from ephemera_tui.service.router import ServiceRouter

    holder = Engine(settings)
    service = Service(holder)
    service.start_in_thread()
    memory = holder.add(Draft(content="booked the flights to Lisbon"))
    second = open_engine(settings)
    try:
        assert isinstance(second.search_router, ServiceRouter)
        assert second.vector_status == "ok"  # served by meaning, though the store is held
        assert second.search("airplane tickets").mode == "hybrid"
        written = second.add(Draft(content="a tram ride in Lisbon"))  # SQL + outbox here
        service.stop()
        holder.close()  # the holder goes away; its lock with it
        deadline = time.monotonic() + 10
        result = second.search("tram lisbon")
        while result.mode != "hybrid" and time.monotonic() < deadline:
            time.sleep(0.5)  # the engine retries the freed store within seconds
            result = second.search("tram lisbon")
        assert result.mode == "hybrid"
        second.sync()
        ids = [h.memory.id for h in second.search("tram lisbon").hits]
        assert written.id in ids and memory.id in ids
    finally:
        second.close()


def test_stop_returns_promptly_while_a_feed_listener_stays_connected(
    served: tuple[Engine, Service],
) -> None:
    """A connected change-feed client must not hold the service past stop(): its handler
    notices the server closing instead of polling for ever."""
    from websockets.sync.client import unix_connect

    engine, service = served
    engine.add(Draft(content="one change to read"))
    with unix_connect(str(service.path), "ws://ephemera/v1/changes?since=0") as ws:
        ws.recv(timeout=10)
        started = time.monotonic()
        service.stop(timeout=10)
        assert not service.running
        assert time.monotonic() - started < 8


def test_a_late_stop_leaves_the_next_services_socket_alone(settings: Settings) -> None:
    """Two services of one process for one data dir, one after the other: stopping the
    first again (a late cleanup) must not remove the socket the second now listens on."""
    engine = Engine(settings)
    try:
        first = Service(engine)
        first.start_in_thread()
        first.stop()
        second = Service(engine)
        second.start_in_thread()
        try:
            first.stop()
            assert second.path.exists()
            assert find_service(settings.data_dir) is not None
        finally:
            second.stop()
        assert not second.path.exists()
    finally:
        engine.close()
