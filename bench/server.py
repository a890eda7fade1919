"""HTTP layer cost of `ragkit serve`: 200 sequential searches over loopback against the same searches in process.

    python bench/server.py [--kb DIR] [--n 200] [--no-key] [--json]
    python bench/server.py --load 60 [--fake-delay 0.02] [--json]
    python bench/server.py --load 60 (--rate R | --rate auto | --utilisation 0.5) [--json]
    python bench/server.py --stream 30 [--fake-delay 0.02] [--json]

Builds a KB of the sample corpus with the bundled embedder (or uses --kb), creates a read key, starts
`ragkit serve` as its own process on a free loopback port, and runs the queries interleaved: each round sends
one `POST /v1/search` (httpx, keep-alive) and one `kb.search()` in this process, alternating which goes first.
Per request, the HTTP layer's cost = client latency - the server's own `Server-Timing: kb;dur=` (time inside
the KB call); it includes authentication (a hashed-key lookup in SQL), validation, thread hops and JSON. Also:
p50/p95 of HTTP search vs in-process search, and their ratio.

--load SECONDS: 24 concurrent closed-loop clients on one server (20 searching, 4 asking with streaming; the
generation lane is 1 slot + a queue of 8), plus a `/healthz` probe every 50 ms, after an unloaded search
baseline. Counts transport errors, 5xx and 429s (each with Retry-After), search p95 under load vs unloaded,
time to the `sources` event and to the first `token`, and the probe's p99. --fake-delay S answers with a
scripted generator that takes S seconds per word (the CI form); 0 uses the configured model (SmolLM2).
With --rate R the searches are open-loop instead: Poisson arrivals at R per second, each its own request
whatever the server's pace; --utilisation F (or --rate auto: F = 0.5) first measures the closed-loop search
throughput for --capacity-seconds and sets R = F x that. The report adds the offered and achieved rates.
See bench/server_load.py.

--stream N: N questions, each asked once over HTTP (`/v1/ask/stream`) and once in this process with the same
scripted generator, interleaved: time to the `sources` event vs the in-process retrieval (`kb.search`), and
time to the first `token` event vs the in-process time to the first `on_text`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    "How often must production API keys be rotated?",
    "hotel costs per night",
    "Where do new employees collect their laptop?",
    "data retention period for logs",
    "who approves travel expenses",
    "key rotation policy",
    "onboarding first day",
    "how long are backups kept",
]


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def p50_p95(xs: list[float], digits: int = 2, scale: float = 1.0) -> dict[str, float]:
    """{"p50", "p95"} of the values times `scale` (1000: seconds to ms), rounded to `digits`."""
    scaled = [x * scale for x in xs]
    return {"p50": round(pct(scaled, 50), digits), "p95": round(pct(scaled, 95), digits)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(cmd: list[str], **popen: Any) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """The server process `cmd` for the duration of the block; terminated after it."""
    server = subprocess.Popen(cmd, **popen)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(20)


def wait_ready(c: httpx.Client, server: subprocess.Popen, timeout_s: float = 300) -> None:  # type: ignore[type-arg]
    """Poll /readyz until the server has loaded its models; fail when it exits or takes over timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if c.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
        time.sleep(0.2)


def interleaved(n: int, over_http: Callable[[str], None], in_process: Callable[[str], None]) -> None:
    """n rounds over QUERIES, each one HTTP call and one in-process call of the same query, alternating which goes
    first so that neither side always runs second (on caches the other warmed)."""
    for i in range(n):
        q = QUERIES[i % len(QUERIES)]
        for step in (over_http, in_process) if i % 2 == 0 else (in_process, over_http):
            step(q)


def rate_arg(value: str) -> float | str:
    """--rate: searches per second, or "auto" (a fraction of the measured capacity)."""
    return value if value == "auto" else float(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, help="an existing KB (default: the sample corpus, built in a temp dir)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-key", action="store_true", help="serve without API keys (loopback)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--load", type=float, default=0.0, metavar="SECONDS", help="run the load test instead")
    ap.add_argument("--stream", type=int, default=0, metavar="N", help="run the streaming latency pairs instead")
    ap.add_argument("--kb-threads", type=int, default=0, help="--load: the server's KB lane (0: its default)")
    ap.add_argument("--fake-delay", type=float, default=0.02, help="--load: seconds per word of a fake generator")
    ap.add_argument("--rate", type=rate_arg, metavar="R|auto", help="--load: open loop, R searches/s arriving Poisson")
    ap.add_argument("--utilisation", type=float, help="--load: open loop at F x the measured capacity (auto: 0.5)")
    ap.add_argument("--capacity-seconds", type=float, default=10.0, help="--utilisation: the capacity run")
    ap.add_argument("--seed", type=int, default=0, help="--rate: the arrival process's seed")
    args = ap.parse_args()
    open_loop = args.rate is not None or args.utilisation is not None
    if open_loop and not args.load:
        ap.error("--rate and --utilisation go with --load")
    if args.rate not in (None, "auto") and args.utilisation is not None:
        ap.error("--rate R fixes the rate; --utilisation goes with --rate auto or alone")
    rate = None if args.rate in (None, "auto") else args.rate  # None: measure the capacity first
    utilisation = 0.5 if args.utilisation is None else args.utilisation
    if (rate is not None and rate <= 0) or utilisation <= 0:
        ap.error("the rate and the utilisation must be positive")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as ragkit serve sets it, so both sides run alike
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import ragkit

    tmp = Path(tempfile.mkdtemp(prefix="ragkit-bench-server-"))
    try:
        kb_dir = tmp / "kb"
        if args.kb:
            shutil.copytree(args.kb, kb_dir)
        else:
            with ragkit.open(kb_dir) as kb:
                kb.ingest([ROOT / "examples" / "sample_corpus"])
        if args.stream:
            result = stream_pairs(kb_dir, args.stream, args.fake_delay)
            print(json.dumps(result, indent=2) if args.json else result)
            return
        if args.load:
            # imported here: server_load imports this file's helpers, so a top-level import would be circular
            import server_load

            if open_loop:
                result = server_load.open_loop(kb_dir, args.load, args.fake_delay, args.kb_threads, rate,
                                               utilisation, args.capacity_seconds, args.seed)  # fmt: skip
            else:
                result = server_load.load(kb_dir, args.load, args.fake_delay, args.kb_threads)
            print(json.dumps(result, indent=2) if args.json else result)
            return
        kb = ragkit.open(kb_dir, create=False)
        headers = {}
        if not args.no_key:
            key, _ = kb.keys.create("bench", [], "read")
            headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        cmd = [sys.executable, "-c", "from ragkit.cli import main; main()", "serve", "--kb", str(kb_dir),
               "--port", str(port), "--rate", "0"]  # fmt: skip
        http: list[float] = []
        kb_s: list[float] = []
        app_s: list[float] = []
        local: list[float] = []
        try:
            with served(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as server:
                server.stdout.readline()  # type: ignore[union-attr]
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
                    wait_ready(c, server)
                    for q in QUERIES:  # warm both sides (first calls load and compile)
                        c.post("/v1/search", json={"query": q}).raise_for_status()
                        kb.search(q)

                    def over_http(q: str) -> None:
                        t0 = time.perf_counter()
                        r = c.post("/v1/search", json={"query": q})
                        http.append(time.perf_counter() - t0)
                        r.raise_for_status()
                        timing = dict(p.strip().split(";dur=") for p in r.headers["server-timing"].split(","))
                        kb_s.append(float(timing["kb"]) / 1000)
                        app_s.append(float(timing["app"]) / 1000)

                    def in_process(q: str) -> None:
                        t0 = time.perf_counter()
                        kb.search(q)
                        local.append(time.perf_counter() - t0)

                    interleaved(args.n, over_http, in_process)
        finally:
            kb.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    overhead = [(h - k) * 1000 for h, k in zip(http, kb_s, strict=True)]
    in_app = [(a - k) * 1000 for a, k in zip(app_s, kb_s, strict=True)]  # routing, auth, validation, JSON
    transport = [(h - a) * 1000 for h, a in zip(http, app_s, strict=True)]  # uvicorn, sockets, the client
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "n": args.n,
        "api_key": not args.no_key,
        "overhead_ms": {**p50_p95(overhead), "mean": round(statistics.mean(overhead), 2)},
        "in_app_ms": p50_p95(in_app),
        "transport_ms": p50_p95(transport),
        "http_ms": p50_p95(http, scale=1000),
        "server_kb_ms": p50_p95(kb_s, scale=1000),
        "in_process_ms": p50_p95(local, scale=1000),
    }
    result["p95_ratio_http_over_in_process"] = round(result["http_ms"]["p95"] / result["in_process_ms"]["p95"], 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        o, h, p = result["overhead_ms"], result["http_ms"], result["in_process_ms"]
        print(f"{args.n} searches; HTTP layer p50 {o['p50']} ms, p95 {o['p95']} ms; HTTP p50/p95 {h['p50']}/{h['p95']} "
              f"ms vs in-process {p['p50']}/{p['p95']} ms (p95 ratio {result['p95_ratio_http_over_in_process']}); "
              f"load {result['load_average']}")  # fmt: skip


SERVE = """
import sys, time, uvicorn, ragkit
from ragkit.server import ServerSettings, create_app
from ragkit.testing import ScriptedGenerator
kb_dir, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
kb = ragkit.open(kb_dir, create=False)
if delay > 0:
    class Slow(ScriptedGenerator):
        def generate(self, messages, max_new_tokens, temperature=0.0, stop=None, on_text=None, schema=None):
            def slow(piece):
                time.sleep(delay)
                if on_text:
                    on_text(piece)
            return super().generate(messages, max_new_tokens, temperature, stop, slow, schema)
    kb._generator.set(Slow(lambda p: " ".join(["Production API keys must be rotated every 90 days [1]."] * 4)))
lanes = {"kb_threads": int(sys.argv[4])} if len(sys.argv) > 4 and int(sys.argv[4]) else {}
settings = ServerSettings(rate_per_minute=0, generators=1, queue=8, **lanes)
app = create_app(kb, require_keys=False, settings=settings)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")
"""


def stream_pairs(kb_dir: Path, n: int, delay: float) -> dict:  # type: ignore[type-arg]
    """--stream: HTTP stream timings against the same steps in process (see the module docstring)."""
    import ragkit
    from ragkit.testing import ScriptedGenerator

    class Slow(ScriptedGenerator):
        def generate(self, messages, max_new_tokens, temperature=0.0, stop=None, on_text=None, schema=None):  # type: ignore[no-untyped-def]
            def slow(piece: str) -> None:
                time.sleep(delay)
                if on_text:
                    on_text(piece)

            return super().generate(messages, max_new_tokens, temperature, stop, slow, schema)

    port = free_port()
    kb = ragkit.open(kb_dir, create=False)
    kb._generator.set(Slow(lambda p: " ".join(["Production API keys must be rotated every 90 days [1]."] * 4)))
    rows: dict[str, list[float]] = {"sources": [], "retrieve": [], "first_token": [], "first_text": []}

    cmd = [sys.executable, "-c", SERVE, str(kb_dir), str(port), str(max(delay, 1e-6)), "0"]
    try:
        with served(cmd) as server, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
            wait_ready(c, server)
            for q in QUERIES:  # warm both sides
                c.post("/v1/ask", json={"question": q}).raise_for_status()
                kb.ask(q)

            def over_http(q: str) -> None:
                t0 = time.perf_counter()
                got_token = False
                with c.stream("POST", "/v1/ask/stream", json={"question": q}) as r:
                    for line in r.iter_lines():
                        if line == "event: sources":
                            rows["sources"].append(time.perf_counter() - t0)
                        elif line == "event: token" and not got_token:
                            rows["first_token"].append(time.perf_counter() - t0)
                            got_token = True

            def in_process(q: str) -> None:
                t0 = time.perf_counter()
                hits = kb.search(q)
                rows["retrieve"].append(time.perf_counter() - t0)
                first: list[float] = []
                kb.answer(q, hits, on_text=lambda _: first or first.append(time.perf_counter() - t0))
                rows["first_text"].append(first[0] if first else float("nan"))

            interleaved(n, over_http, in_process)
    finally:
        kb.close()
    gap_sources = [(a - b) * 1000 for a, b in zip(rows["sources"], rows["retrieve"], strict=True)]
    gap_token = [(a - b) * 1000 for a, b in zip(rows["first_token"], rows["first_text"], strict=True)]
    return {
        "n": n,
        "fake_delay_s": delay,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "sources_ms": p50_p95(rows["sources"], 1, 1000),
        "in_process_retrieve_ms": p50_p95(rows["retrieve"], 1, 1000),
        "sources_minus_retrieve_ms": p50_p95(gap_sources, 1),
        "first_token_ms": p50_p95(rows["first_token"], 1, 1000),
        "in_process_first_text_ms": p50_p95(rows["first_text"], 1, 1000),
        "first_token_minus_in_process_ms": p50_p95(gap_token, 1),
    }


if __name__ == "__main__":
    main()
