"""Uploads through a live server: a 50 MB file is accepted (202 + a job id) within a second; while a many-file
upload is ingested, concurrent searches all succeed; the job can be cancelled, and the KB is consistent after."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_CORPUS
from test_server_support import LiveServer, client, events, make_kb, wait_until

from ragkit.server import ServerSettings, create_app

pytestmark = pytest.mark.usefixtures("hashed")
WORDS = "policy rotation laptop travel hotel retention backup keys onboarding review audit budget".split()


def text_of(n_bytes: int, seed: int) -> bytes:
    words, size, i = [], 0, seed
    while size < n_bytes:
        w = WORDS[(i * 7 + seed) % len(WORDS)]
        words.append(w + ("." if i % 13 == 12 else "") + ("\n\n" if i % 97 == 96 else " "))
        size += len(words[-1])
        i += 1
    return "".join(words).encode()


def job_state(c, job: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return c.get(f"/v1/jobs/{job}").json()


@pytest.mark.slow
def test_a_50_mb_upload_is_accepted_within_a_second(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS], **{"ingest.max_file_mb": 5})  # the job then fails fast
    server = LiveServer(create_app(kb, require_keys=False, settings=ServerSettings(max_upload_bytes=64 << 20)))
    try:
        big = b"x" * (50 << 20)
        with client(server.url) as c:
            t0 = time.perf_counter()
            r = c.post("/v1/documents", files={"files": ("big.txt", big, "text/plain")})
            took = time.perf_counter() - t0
            assert r.status_code == 202, r.text
            # the target is 1 s (0.81 s measured at load average 5); 2 s leaves room for a busy CI machine
            assert took <= 2.0, f"202 after {took:.2f} s"
            job = r.json()["job"]
            assert wait_until(lambda: job_state(c, job)["state"] in ("done", "failed"), timeout=30)
            state = job_state(c, job)
            assert state["state"] == "failed" and "big.txt" in state["error"]  # over ingest.max_file_mb: reported
    finally:
        server.close()
        kb.close()


def test_searches_succeed_during_an_ingest_job_which_can_be_cancelled(tmp_path: Path) -> None:
    # groups of 32 chunks: the hashing embedder is so fast that groups sized by time would take all 30 at once
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS], **{"ingest.batch_chunks": 32})
    server = LiveServer(create_app(kb, require_keys=False, settings=ServerSettings(rate_per_minute=0)))
    try:
        files = [("files", (f"memo-{i:02d}.md", text_of(60_000, i), "text/markdown")) for i in range(30)]
        with client(server.url) as c:
            job = c.post("/v1/documents", files=files).json()["job"]
            seen: list[tuple[str, dict]] = []  # type: ignore[type-arg]

            def follow() -> None:  # the job's progress events, as a page would follow them
                with client(server.url) as f, f.stream("GET", f"/v1/jobs/{job}/events") as r:
                    seen.extend((n, d) for n, d in events(r.iter_lines()) if n != "comment")

            follower = threading.Thread(target=follow)
            follower.start()
            assert wait_until(lambda: job_state(c, job)["state"] == "running", timeout=20)
            codes: list[int] = []
            stop = threading.Event()

            def searcher() -> None:
                with client(server.url) as s:
                    while not stop.is_set():
                        codes.append(s.post("/v1/search", json={"query": "key rotation policy"}).status_code)

            threads = [threading.Thread(target=searcher) for _ in range(4)]
            for t in threads:
                t.start()

            # cancel once the follower has seen the job move (two progress events): on a loaded machine it can
            # connect late, and a cancel right after its first event would leave it only that one
            def moved() -> bool:
                return sum(n == "progress" for n, _ in seen) >= 2 and job_state(c, job)["progress"]["done"] >= 3

            assert wait_until(moved, timeout=60)
            cancelled = c.delete(f"/v1/jobs/{job}").json()
            assert cancelled["state"] == "running"
            assert wait_until(lambda: job_state(c, job)["state"] != "running", timeout=60)
            stop.set()
            for t in threads:
                t.join(30)
            state = job_state(c, job)
            assert state["state"] == "cancelled" and state["report"]["interrupted"] is True
            with c.stream("GET", f"/v1/jobs/{job}/events") as r:  # a finished job's stream: its end, at once
                assert r.headers["content-type"].startswith("text/event-stream")
                [(name, data)] = [(n, d) for n, d in events(r.iter_lines()) if n != "comment"]
            assert name == "end" and data["state"] == "cancelled"
            assert 3 <= state["report"]["ingested"] < 30
            assert codes and set(codes) == {200}, set(codes)
            follower.join(30)
            assert seen[-1][0] == "end" and seen[-1][1]["state"] == "cancelled"
            done_counts = [d["progress"]["done"] for n, d in seen if n == "progress"]
            assert len(done_counts) >= 2 and done_counts == sorted(done_counts), seen  # it moved, and only forward
            listed = c.get("/v1/documents", params={"limit": 1000}).json()
            assert listed["total"] == 5 + state["report"]["ingested"]
        report = kb.check(repair=False)
        assert report.ok, report
    finally:
        server.close()
        kb.close()
