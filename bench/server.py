"""HTTP layer cost of `ragkit serve`: 200 sequential searches over loopback against the same searches in process.

    python bench/server.py [--kb DIR] [--n 200] [--no-key] [--json]

Builds a KB of the sample corpus with the bundled embedder (or uses --kb), creates a read key, starts
`ragkit serve` as its own process on a free loopback port, and runs the queries interleaved: each round sends
one `POST /v1/search` (httpx, keep-alive) and one `kb.search()` in this process, alternating which goes first.
Per request, the HTTP layer's cost = client latency - the server's own `Server-Timing: kb;dur=` (time inside
the KB call); it includes authentication (a hashed-key lookup in SQL), validation, thread hops and JSON. Also:
p50/p95 of HTTP search vs in-process search, and their ratio.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, help="an existing KB (default: the sample corpus, built in a temp dir)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-key", action="store_true", help="serve without API keys (loopback)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
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
        kb = ragkit.open(kb_dir, create=False)
        headers = {}
        if not args.no_key:
            key, _ = kb.keys.create("bench", [], "read")
            headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        cmd = [sys.executable, "-c", "from ragkit.cli import main; main()", "serve", "--kb", str(kb_dir),
               "--port", str(port), "--rate", "0"]  # fmt: skip
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            server.stdout.readline()  # type: ignore[union-attr]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
                while c.get("/readyz").status_code != 200:
                    time.sleep(0.1)
                for q in QUERIES:  # warm both sides (first calls load and compile)
                    c.post("/v1/search", json={"query": q}).raise_for_status()
                    kb.search(q)
                http, kb_s, app_s, local = [], [], [], []
                for i in range(args.n):
                    q = QUERIES[i % len(QUERIES)]

                    def over_http(q: str = q) -> None:
                        t0 = time.perf_counter()
                        r = c.post("/v1/search", json={"query": q})
                        http.append(time.perf_counter() - t0)
                        r.raise_for_status()
                        timing = dict(p.strip().split(";dur=") for p in r.headers["server-timing"].split(","))
                        kb_s.append(float(timing["kb"]) / 1000)
                        app_s.append(float(timing["app"]) / 1000)

                    def in_process(q: str = q) -> None:
                        t0 = time.perf_counter()
                        kb.search(q)
                        local.append(time.perf_counter() - t0)

                    for step in (over_http, in_process) if i % 2 == 0 else (in_process, over_http):
                        step()
        finally:
            server.terminate()
            server.wait(20)
            kb.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    overhead = [(h - k) * 1000 for h, k in zip(http, kb_s, strict=True)]
    ms = lambda xs: [x * 1000 for x in xs]  # noqa: E731
    in_app = [(a - k) * 1000 for a, k in zip(app_s, kb_s, strict=True)]  # routing, auth, validation, JSON
    transport = [(h - a) * 1000 for h, a in zip(http, app_s, strict=True)]  # uvicorn, sockets, the client
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "n": args.n,
        "api_key": not args.no_key,
        "overhead_ms": {
            "p50": round(pct(overhead, 50), 2),
            "p95": round(pct(overhead, 95), 2),
            "mean": round(statistics.mean(overhead), 2),
        },  # fmt: skip
        "in_app_ms": {"p50": round(pct(in_app, 50), 2), "p95": round(pct(in_app, 95), 2)},
        "transport_ms": {"p50": round(pct(transport, 50), 2), "p95": round(pct(transport, 95), 2)},
        "http_ms": {"p50": round(pct(ms(http), 50), 2), "p95": round(pct(ms(http), 95), 2)},
        "server_kb_ms": {"p50": round(pct(ms(kb_s), 50), 2), "p95": round(pct(ms(kb_s), 95), 2)},
        "in_process_ms": {"p50": round(pct(ms(local), 50), 2), "p95": round(pct(ms(local), 95), 2)},
    }
    result["p95_ratio_http_over_in_process"] = round(result["http_ms"]["p95"] / result["in_process_ms"]["p95"], 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        o, h, p = result["overhead_ms"], result["http_ms"], result["in_process_ms"]
        print(f"{args.n} searches; HTTP layer p50 {o['p50']} ms, p95 {o['p95']} ms; HTTP p50/p95 {h['p50']}/{h['p95']} "
              f"ms vs in-process {p['p50']}/{p['p95']} ms (p95 ratio {result['p95_ratio_http_over_in_process']}); "
              f"load {result['load_average']}")  # fmt: skip


if __name__ == "__main__":
    main()
