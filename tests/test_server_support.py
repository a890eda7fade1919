"""Shared by the server tests (no tests here): KBs with fake models, a live uvicorn server on a free loopback
port, a slow scripted generator, and a server-sent-event reader."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

import ragkit
from ragkit.testing import ScriptedGenerator

ANSWER = "Production API keys must be rotated every 90 days [1]. The security team rotates them."
FAST = {"generator.min_relevance": 0.0, "generator.min_grounding": 0.0}


class SlowGenerator(ScriptedGenerator):
    """A ScriptedGenerator that sleeps `delay` seconds before each piece of text (a model decoding slowly).
    `running` counts generations in progress; `stopped` records how each ended ("done" or an exception name)."""

    def __init__(
        self, reply: str = ANSWER, delay: float = 0.0, gate: threading.Event | None = None, **kwargs: Any
    ) -> None:
        super().__init__(lambda prompt: reply, **kwargs)
        self.delay = delay
        self.gate = gate  # when given, every piece waits for it (a generation held until the test lets it go)
        self.running = 0
        self.stopped: list[str] = []
        self.pieces = 0
        self._lock = threading.Lock()

    def generate(self, messages, max_new_tokens, temperature=0.0, stop=None, on_text=None, schema=None):  # type: ignore[no-untyped-def]
        def slow(piece: str) -> None:
            if self.gate is not None:
                self.gate.wait(30)
            time.sleep(self.delay)
            with self._lock:
                self.pieces += 1
            if on_text is not None:
                on_text(piece)

        with self._lock:
            self.running += 1
        try:
            result = super().generate(messages, max_new_tokens, temperature, stop, slow, schema)
            self.stopped.append("done")
            return result
        except BaseException as exc:
            self.stopped.append(type(exc).__name__)
            raise
        finally:
            with self._lock:
                self.running -= 1


def make_kb(root: Path, sources: list[Path], generator: ScriptedGenerator | None = None, **config: Any) -> Any:
    kb = ragkit.open(root, **{**FAST, **config})
    if sources:
        kb.ingest(sources)
    kb._generator.set(generator or SlowGenerator())
    return kb


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a thread (real sockets: streaming, disconnects)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event name, parsed data) from a server-sent-event stream's lines; comments come as ("comment", text)."""
    name, data = "message", []
    for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            text = "\n".join(data)
            yield name, text if text == "[DONE]" else json.loads(text)
            name, data = "message", []


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client(url: str, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
    return httpx.Client(base_url=url, headers=auth(key) if key else {}, timeout=timeout)
