"""The load test of bench/server.py (`--load`), closed-loop or open-loop; run it through bench/server.py.

Closed loop (`--load SECONDS`): 20 searchers that each send their next search as soon as the last one answered.
With zero think time they keep the CPU saturated, so their latency is the queue they form themselves (Little's
law: 20 clients / throughput), whatever the server does.

Open loop (`--load SECONDS --rate R`, or `--utilisation F`): searches arrive as a Poisson process at R per second
whatever the server's pace, each one its own task, so the load is a fraction of the capacity instead of always
all of it. Latency is measured from the scheduled arrival, not from the send, so that a late client (an event
loop behind, a connection pool full) counts against the server instead of hiding the wait (coordinated omission).
`--utilisation F` (or `--rate auto`, F = 0.5) first runs the closed loop for --capacity-seconds on the same
server and sets R = F x the searches it completed per second. That capacity is measured at 20 concurrent
searches, which the server coalesces into larger embedding batches than an open loop at a lower rate gives it,
so the real utilisation at R is somewhat above F.

Both modes keep the 4 streaming askers and the `/healthz` probe every 50 ms, and report the same figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

# bench/ is sys.path[0] when bench/server.py runs; this imports it as a module besides __main__ (definitions only)
from server import QUERIES, SERVE, free_port, pct, served, wait_ready

SEARCHERS, ASKERS, PROBE_EVERY_S = 20, 4, 0.05
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)


@contextlib.contextmanager
def load_server(kb_dir: Path, delay: float, kb_threads: int) -> Iterator[tuple[str, list[float]]]:
    """The scripted server (bench/server.py's SERVE) for the block, warmed: its URL, and the latencies of 60
    sequential searches against it before any load (the unloaded baseline)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with served([sys.executable, "-c", SERVE, str(kb_dir), str(port), str(delay), str(kb_threads)]) as server:
        with httpx.Client(base_url=url, timeout=120) as c:
            wait_ready(c, server)
            c.post("/v1/ask", json={"question": QUERIES[0]})  # warm the generator
            unloaded = []
            for i in range(60):
                t0 = time.perf_counter()
                c.post("/v1/search", json={"query": QUERIES[i % len(QUERIES)]}).raise_for_status()
                unloaded.append(time.perf_counter() - t0)
        yield url, unloaded


class LoadRun:
    """One timed run against the server: its clients (searches, askers, probe) and what they counted."""

    def __init__(self, c: httpx.AsyncClient, seconds: float) -> None:
        self.c = c
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.stats: dict[str, list[float]] = {k: [] for k in ("search", "health", "sources", "first_token", "answer")}
        self.counts = dict.fromkeys("transport_errors 5xx 429 429_without_retry_after asks_ok other".split(), 0)
        self.searches_in_window = 0  # answered before the end: the throughput, without the drain after it

    def running(self) -> bool:
        return time.monotonic() < self.end

    def tally(self, status: int, headers: httpx.Headers) -> None:
        if status >= 500:
            self.counts["5xx"] += 1
        elif status == 429:
            self.counts["429"] += 1
            self.counts["429_without_retry_after"] += "retry-after" not in headers
        elif status != 200:
            self.counts["other"] += 1

    async def search(self, n: int, t0: float) -> None:
        """One search, its latency counted from t0 (perf_counter): the send, or in open loop the arrival."""
        try:
            r = await self.c.post("/v1/search", json={"query": QUERIES[n % len(QUERIES)]})
        except httpx.TransportError:
            self.counts["transport_errors"] += 1
            return
        self.tally(r.status_code, r.headers)
        if r.status_code == 200:
            self.stats["search"].append(time.perf_counter() - t0)
            self.searches_in_window += self.running()

    async def searcher(self, i: int) -> None:
        """A closed-loop client: the next search as soon as the last one is answered."""
        n = i
        while self.running():
            n += 1
            await self.search(n, time.perf_counter())

    async def arrivals(self, rate: float, rng: random.Random) -> dict[str, int]:
        """Open loop: searches arriving as a Poisson process at `rate` per second until the end, each its own task
        (so a slow answer never delays the next arrival); waits for the last ones. Returns arrival counts."""
        tasks: set[asyncio.Task[None]] = set()
        n = max_in_flight = 0
        due = time.perf_counter()
        stop = due + (self.end - time.monotonic())
        while (due := due + rng.expovariate(rate)) < stop:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = asyncio.create_task(self.search(n, due))  # timed from `due`, however late this loop woke
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            max_in_flight = max(max_in_flight, len(tasks))
        backlog = len(tasks)
        await asyncio.gather(*tasks)
        return {"arrivals": n, "max_in_flight": max_in_flight, "in_flight_at_end": backlog}

    async def asker(self, i: int) -> None:
        n = i
        while self.running():
            n += 1
            t0 = time.perf_counter()
            question = QUERIES[n % len(QUERIES)]
            try:
                async with self.c.stream("POST", "/v1/ask/stream", json={"question": question}) as r:
                    self.tally(r.status_code, r.headers)
                    if r.status_code != 200:
                        await r.aread()
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    first = True
                    async for line in r.aiter_lines():
                        if line == "event: sources":
                            self.stats["sources"].append(time.perf_counter() - t0)
                        elif line == "event: token" and first:
                            self.stats["first_token"].append(time.perf_counter() - t0)
                            first = False
                        elif line == "event: done":
                            self.stats["answer"].append(time.perf_counter() - t0)
                            self.counts["asks_ok"] += 1
            except httpx.TransportError:
                self.counts["transport_errors"] += 1

    async def prober(self) -> None:
        while self.running():
            t0 = time.perf_counter()
            try:
                r = await self.c.get("/healthz")
                self.tally(r.status_code, r.headers)
                self.stats["health"].append(time.perf_counter() - t0)
            except httpx.TransportError:
                self.counts["transport_errors"] += 1
            await asyncio.sleep(max(0.0, PROBE_EVERY_S - (time.perf_counter() - t0)))

    async def closed_loop(self) -> None:
        await asyncio.gather(*(self.searcher(i) for i in range(SEARCHERS)), *self.background())

    def background(self) -> list[Any]:
        """The clients both modes run besides the searches: the streaming askers and the probe."""
        return [*(self.asker(i) for i in range(ASKERS)), self.prober()]

    def summary(self, unloaded: list[float]) -> dict[str, Any]:
        s = self.stats
        ms = lambda xs, q: round(pct([x * 1000 for x in xs], q), 1) if xs else None  # noqa: E731
        return {
            "seconds": self.seconds,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            **self.counts,
            "searches": len(s["search"]),
            "search_unloaded_p95_ms": ms(unloaded, 95),
            "search_loaded_p50_ms": ms(s["search"], 50),
            "search_loaded_p95_ms": ms(s["search"], 95),
            "search_p95_ratio_loaded_over_unloaded": round(pct(s["search"], 95) / pct(unloaded, 95), 2),
            "healthz_p50_ms": ms(s["health"], 50),
            "healthz_p99_ms": ms(s["health"], 99),
            "sources_p50_ms": ms(s["sources"], 50),
            "first_token_p50_ms": ms(s["first_token"], 50),
            "answer_p50_s": round(pct(s["answer"], 50), 2) if s["answer"] else None,
        }


def load(kb_dir: Path, seconds: float, delay: float, kb_threads: int = 0) -> dict[str, Any]:
    """The closed-loop load test: a server process, then 20 searchers, 4 askers and the probe in this one."""

    async def run(url: str, unloaded: list[float]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=LIMITS) as c:
            r = LoadRun(c, seconds)
            await r.closed_loop()
        return r.summary(unloaded)

    with load_server(kb_dir, delay, kb_threads) as (url, unloaded):
        return asyncio.run(run(url, unloaded))


def open_loop(
    kb_dir: Path,
    seconds: float,
    delay: float,
    kb_threads: int = 0,
    rate: float | None = None,
    utilisation: float = 0.5,
    capacity_seconds: float = 10.0,
    seed: int = 0,
) -> dict[str, Any]:
    """The open-loop load test: Poisson searches at `rate` per second, or (rate None) at `utilisation` x the
    closed-loop throughput measured first on the same server; the askers and the probe as in the closed loop."""

    async def run(url: str, unloaded: list[float]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=LIMITS) as c:
            head: dict[str, Any] = {"mode": "open-loop"}
            offered = rate
            if offered is None:
                cap = LoadRun(c, capacity_seconds)
                await cap.closed_loop()
                capacity = cap.searches_in_window / capacity_seconds
                assert capacity > 0, "no search was answered in the capacity run"
                offered = utilisation * capacity
                head |= {"capacity_seconds": capacity_seconds, "capacity_searches_per_s": round(capacity, 1),
                         "utilisation": utilisation}  # fmt: skip
            r = LoadRun(c, seconds)
            arrived, *_ = await asyncio.gather(r.arrivals(offered, random.Random(seed)), *r.background())
        return {
            **head,
            "offered_rate_per_s": round(offered, 2),
            "arrival_rate_per_s": round(arrived["arrivals"] / seconds, 2),  # the Poisson draw's own
            "achieved_rate_per_s": round(r.searches_in_window / seconds, 2),
            **arrived,
            **r.summary(unloaded),
            "search_unloaded_p50_ms": round(pct([x * 1000 for x in unloaded], 50), 1),
        }

    with load_server(kb_dir, delay, kb_threads) as (url, unloaded):
        return asyncio.run(run(url, unloaded))
