"""ragkit serve under concurrent load with the real bundled models (slow): a `ragkit serve` process on the
sample corpus, 6 clients searching and 2 asking with streaming for 20 s, a /healthz probe every 50 ms. No
transport error, no 5xx, every refusal a 429 with Retry-After, every ask that got a slot ends with the checked
answer. (The CI form with a scripted generator, and the figures, are bench/server.py --load.)"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import run
from test_server_support import events

QUERIES = ["How often must production API keys be rotated?", "hotel costs", "laptop on the first day", "backups"]


def _ready(c: httpx.Client) -> bool:
    try:
        return c.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
def test_the_real_models_under_concurrent_load(built_kb: Path, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(built_kb, kb)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "from ragkit.cli import main; main()", "serve", "--kb", str(kb), "--port",
           str(port), "--queue", "1", "--rate", "0"]  # fmt: skip
    assert run("info", "--kb", kb).exit_code == 0
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    outcomes: dict[str, int] = {"search_ok": 0, "ask_ok": 0, "429": 0, "429_no_retry_after": 0, "5xx": 0,
                                "transport_errors": 0, "other": 0, "asks_without_answer": 0}  # fmt: skip
    health: list[float] = []
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            outcomes[key] += 1

    def status(r: httpx.Response) -> bool:
        if r.status_code >= 500:
            count("5xx")
        elif r.status_code == 429:
            count("429")
            if "retry-after" not in r.headers:
                count("429_no_retry_after")
        elif r.status_code != 200:
            count("other")
        return r.status_code == 200

    try:
        proc.stdout.readline()  # type: ignore[union-attr]
        with httpx.Client(base_url=url, timeout=300) as c:
            deadline = time.monotonic() + 180
            while not _ready(c):  # the URL is printed just before uvicorn binds the port
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            assert c.post("/v1/ask", json={"question": QUERIES[0], "max_tokens": 32}).status_code == 200  # warm
        end = time.monotonic() + 20

        def searcher(i: int) -> None:
            with httpx.Client(base_url=url, timeout=300) as c:
                while time.monotonic() < end:
                    try:
                        if status(c.post("/v1/search", json={"query": QUERIES[i % len(QUERIES)]})):
                            count("search_ok")
                    except httpx.TransportError:
                        count("transport_errors")
                    i += 1

        def asker(i: int) -> None:
            with httpx.Client(base_url=url, timeout=300) as c:
                while time.monotonic() < end:
                    body = {"question": QUERIES[i % len(QUERIES)], "max_tokens": 48}
                    try:
                        with c.stream("POST", "/v1/ask/stream", json=body) as r:
                            if not status(r):
                                r.read()
                                time.sleep(float(r.headers.get("retry-after", "1")))
                                continue
                            names = [n for n, _ in events(r.iter_lines())]
                        count("ask_ok" if names[-2:] == ["answer", "done"] else "asks_without_answer")
                    except httpx.TransportError:
                        count("transport_errors")
                    i += 1

        def prober() -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                while time.monotonic() < end:
                    t0 = time.perf_counter()
                    c.get("/healthz")
                    health.append(time.perf_counter() - t0)
                    time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))

        threads = [threading.Thread(target=searcher, args=(i,)) for i in range(6)]
        threads += [threading.Thread(target=asker, args=(i,)) for i in range(2)] + [threading.Thread(target=prober)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(400)
    finally:
        proc.terminate()
        proc.wait(30)
    assert outcomes["transport_errors"] == outcomes["5xx"] == outcomes["other"] == 0, outcomes
    assert outcomes["429_no_retry_after"] == 0 and outcomes["asks_without_answer"] == 0, outcomes
    assert outcomes["search_ok"] > 20 and outcomes["ask_ok"] >= 1, outcomes
    assert health and sorted(health)[len(health) // 2] < 0.5, health  # the loop keeps answering
