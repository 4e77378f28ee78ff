"""The shared embedding service, measured: fastembed's local batch rate against
``/v1/embeddings`` of a real ``ephemera serve --listen`` with 1 and 4 concurrent clients.

1. ``local``: the configured model (default: the offline all-MiniLM-L6-v2 int8) embedding
   LoCoMo turns in this process at batch sizes 1 to 256; the best rate is the bar.
2. ``service``: ``ephemera serve --listen 127.0.0.1:PORT`` in its own process, and 1 or 4
   client processes each posting ``--request-size`` turns per request (JSON floats, as the
   project's own client asks; ``--base64`` as OpenAI's clients ask) for ``--seconds``.
   Throughput is texts embedded per wall second over all clients; the service's counters say
   how many model calls served how many requests.

Rounds alternate local and service runs, so a neighbour's load falls on both; each figure is
the median over rounds, printed with the load average before and after.

    nice -n 10 /work/venv/bin/python bench/embedding_service.py [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import MODEL_DIR, base_parser, table, temp_dir
from _datasets import load_locomo

from ephemera_tui.engine.embedder import DEFAULT_MODEL, load_embedder

EPHEMERA = [sys.executable, "-m", "ephemera_tui.cli"]
BATCHES = (1, 8, 32, 128, 256, 1024)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def corpus(data: Path, limit: int) -> list[str]:
    texts = [draft.content for _, draft in load_locomo(data).docs]
    random.Random(7).shuffle(texts)
    return texts[:limit]


def local_rates(model: str, texts: list[str], seconds: float) -> dict[str, float]:
    """Texts per second of fastembed in this process: per call size, each call's texts
    sorted by length and embedded 32 at a time (the engine's way, fastembed's best case),
    and fastembed's default call (256 texts in arrival order)."""
    embedder: Any = load_embedder(model, MODEL_DIR, 0).inner
    fastembed = embedder._model  # the TextEmbedding behind the engine's embedder
    embedder.embed(texts[:64])  # warm up

    def rate(call: Any, size: int) -> float:
        done, start, cursor = 0, time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            call([texts[(cursor + i) % len(texts)] for i in range(size)])
            cursor += size
            done += size
        return done / (time.perf_counter() - start)

    rates = {f"sorted, calls of {b}": rate(embedder.embed, b) for b in BATCHES}
    rates["default call of 256"] = rate(lambda chunk: list(fastembed.embed(chunk)), 256)
    # For reference, the service's own way: one one-thread session per core side by side.
    from ephemera_tui.service.batching import SessionPool

    def one_thread() -> Any:
        model = embedder._session(threads=1)
        return lambda chunk: list(model.embed(chunk, batch_size=32))

    pool = SessionPool([one_thread() for _ in range(os.cpu_count() or 1)])
    rates["(reference) one-thread sessions side by side, calls of 1024"] = rate(
        lambda chunk: pool(sorted(chunk, key=len)), 1024
    )
    return rates


def client(args: tuple[str, list[str], int, float, bool, int]) -> int:
    """One client process: post requests for ``seconds``; the texts embedded."""
    url, texts, size, seconds, as_base64, seed = args
    rng = random.Random(seed)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = rng.randrange(len(texts))
        chunk = [texts[(start + i) % len(texts)] for i in range(size)]
        body: dict[str, Any] = {"input": chunk}
        if as_base64:
            body["encoding_format"] = "base64"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            answer = json.loads(response.read())
        rows = answer["data"]
        if as_base64:
            rows = [base64.b64decode(r["embedding"]) for r in rows]
        assert len(rows) == size
        done += size
    return done


def service_rate(
    port: int, texts: list[str], clients: int, size: int, seconds: float, as_base64: bool
) -> float:
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    client((url, texts, size, 2.0, as_base64, 0))  # warm up (the model loads on first use)
    context = multiprocessing.get_context("spawn")
    with context.Pool(clients) as pool:
        start = time.perf_counter()
        counts = pool.map(
            client, [(url, texts, size, seconds, as_base64, n + 1) for n in range(clients)]
        )
        wall = time.perf_counter() - start
    return sum(counts) / wall


def start_service(data: Path, model: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EPHEMERA_DATA_DIR": str(data),
        "EPHEMERA_CONFIG": str(data / "none.toml"),
        "EPHEMERA_EMBEDDING_MODEL": model,
        "EPHEMERA_METRICS": "0",
        "EPHEMERA_EMBEDDING_CACHE_SIZE": "0",  # every text embedded, never a cache hit
    }
    (data / "none.toml").write_text("")
    process = subprocess.Popen(
        [*EPHEMERA, "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2)  # noqa: S310
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ephemera serve did not start") from None
            time.sleep(0.3)


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--request-size", type=int, default=64, help="texts per request")
    parser.add_argument("--texts", type=int, default=4000, help="LoCoMo turns used")
    parser.add_argument("--base64", action="store_true", help="clients ask for base64")
    args = parser.parse_args()
    texts = corpus(args.data, args.texts)
    print(
        f"{len(texts)} LoCoMo turns, mean {statistics.mean(len(t) for t in texts):.0f} chars; "
        f"{os.cpu_count()} cores; load before {load()}",
        flush=True,
    )
    local: dict[str, list[float]] = {}
    served: dict[int, list[float]] = {1: [], 4: []}
    loads: list[str] = []
    with temp_dir("ephemera-embed-bench-") as tmp:
        port = free_port()
        service = start_service(Path(tmp), args.model, port)
        try:
            for round_no in range(args.rounds):
                for name, rate in local_rates(args.model, texts, args.seconds / 4).items():
                    local.setdefault(name, []).append(rate)
                for clients in (1, 4):
                    served[clients].append(
                        service_rate(
                            port, texts, clients, args.request_size, args.seconds, args.base64
                        )
                    )
                loads.append(load())
                fastembed = [v[-1] for n, v in local.items() if not n.startswith("(reference)")]
                print(
                    f"round {round_no + 1}: best local "
                    f"{max(fastembed):.0f}/s, service 1 client "
                    f"{served[1][-1]:.0f}/s, 4 clients {served[4][-1]:.0f}/s; load {loads[-1]}",
                    flush=True,
                )
        finally:
            service.terminate()
            service.wait(30)
    rows: list[list[object]] = [
        [f"fastembed, {name}", f"{statistics.median(v):.0f}", f"{min(v):.0f}-{max(v):.0f}"]
        for name, v in local.items()
    ]
    best_batch = max(
        (name for name in local if not name.startswith("(reference)")),
        key=lambda name: statistics.median(local[name]),
    )
    best = statistics.median(local[best_batch])
    for clients, values in served.items():
        rows.append(
            [
                f"service, {clients} client{'s' if clients > 1 else ''} x {args.request_size}"
                + (" (base64)" if args.base64 else ""),
                f"{statistics.median(values):.0f}",
                f"{min(values):.0f}-{max(values):.0f}",
            ]
        )
    print(table(["", "texts/s (median)", "range"], rows))
    four = statistics.median(served[4])
    print(
        f"4 clients / best local ({best_batch}): {four / best:.2f}; "
        f"load after each round: {', '.join(loads)}"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "local": {n: statistics.median(v) for n, v in local.items()},
                    "service": {c: statistics.median(v) for c, v in served.items()},
                    "request_size": args.request_size,
                    "base64": args.base64,
                    "loads": loads,
                }
            )
        )


if __name__ == "__main__":
    main()
