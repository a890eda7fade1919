"""ragkit serve through a real uvicorn on a free loopback port: streaming event order, heartbeats, a disconnect
that stops generation and frees the lane, 429 when the lane is full, the official openai client, and ragkit's
own OpenAI-compatible generator talking to ragkit serve (dogfood). Only the models are fakes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_CORPUS
from test_server_support import ANSWER, LiveServer, SlowGenerator, client, events, make_kb, wait_until

from ragkit.server import ServerSettings, create_app

pytestmark = pytest.mark.usefixtures("hashed")
QUESTION = "How often must production API keys be rotated?"
LONG = " ".join(["Keys are rotated every 90 days [1]."] * 60)  # 420 words


@pytest.fixture
def serve(tmp_path: Path):  # type: ignore[no-untyped-def]
    """serve(generator, config={KEY: value}, **settings) -> (url, kb, generator): a live server on a KB of the
    sample corpus."""
    started: list[tuple[LiveServer, object]] = []

    def start(generator: SlowGenerator | None = None, require_keys: bool = False, config=None, **settings: object):  # type: ignore[no-untyped-def]
        gen = generator or SlowGenerator()
        kb = make_kb(tmp_path / f"kb{len(started)}", [SAMPLE_CORPUS], gen, **(config or {}))
        app = create_app(kb, require_keys=require_keys, settings=ServerSettings(**settings), warm=False)
        server = LiveServer(app)
        started.append((server, kb))
        start.apps[server.url] = app  # type: ignore[attr-defined]
        return server.url, kb, gen

    start.apps = {}  # type: ignore[attr-defined]
    yield start
    for server, kb in started:
        server.close()
        kb.close()  # type: ignore[attr-defined]


def test_a_streamed_answer_sends_sources_then_tokens_then_the_checked_answer_then_done(serve) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = serve(SlowGenerator(ANSWER, delay=0.02))
    with client(url) as c, c.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
        got = [(name, data) for name, data in events(r.iter_lines()) if name != "comment"]
    names = [n for n, _ in got]
    assert names[0] == "sources" and names[-2:] == ["answer", "done"]
    assert set(names[1:-2]) == {"token"} and len(names) - 3 == len(ANSWER.split())
    assert got[0][1]["hits"][0]["chunk"]["uri"]
    assert "".join(d["text"] for n, d in got if n == "token") == ANSWER  # the draft, token by token
    answer = got[-2][1]
    assert "90 days" in answer["text"] and answer["citations"] and answer["abstained"] is False


def test_an_idle_stream_gets_heartbeat_comments(serve) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = serve(SlowGenerator("Keys rotate every ninety days [1].", delay=0.25), heartbeat_s=0.05)
    with client(url) as c, c.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as r:
        got = list(events(r.iter_lines()))
    assert ("comment", "ping") in got and got[-1][0] == "done"


def test_a_client_that_disconnects_stops_its_generation_and_frees_the_lane(serve) -> None:  # type: ignore[no-untyped-def]
    gen = SlowGenerator(LONG, delay=0.02)
    url, _, _ = serve(gen, generators=1, queue=0)
    with client(url) as c:
        with c.stream("POST", "/v1/ask/stream", json={"question": QUESTION}) as r:
            tokens = 0
            for name, _ in events(r.iter_lines()):
                tokens += name == "token"
                if tokens == 5:
                    break
        left = time.monotonic()
        assert wait_until(lambda: gen.running == 0, timeout=5)
        freed = time.monotonic() - left
        assert gen.stopped == ["Cancelled"] and gen.pieces < 60  # stopped long before its 420 words
        assert freed < 0.5, f"the lane was freed {freed:.2f} s after the client left"
        assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200  # the one slot is free again
        metrics = c.get("/metrics").text
        assert "ragkit_cancelled_generations_total 1.0" in metrics and "ragkit_generations_running 0.0" in metrics


def test_a_full_lane_answers_429_with_retry_after_and_the_queue_drains(serve) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()  # the running generation is held until the refusals are checked
    gen = SlowGenerator(ANSWER, gate=gate)
    url, _, _ = serve(gen, generators=1, queue=1)
    codes: list[int] = []

    def ask() -> None:
        with client(url) as c:
            codes.append(c.post("/v1/ask", json={"question": QUESTION}).status_code)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    try:
        with client(url) as c:
            for t in threads:  # the first runs, the second waits in the queue
                t.start()
                assert wait_until(lambda: gen.running == 1)
            assert wait_until(lambda: "ragkit_generation_queue_depth 1.0" in c.get("/metrics").text)
            r = c.post("/v1/ask", json={"question": QUESTION})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "retry" in r.json()["error"]
            s = c.post("/v1/ask/stream", json={"question": QUESTION})
            assert s.status_code == 429  # a stream is refused before it starts: a real status, not an error event
            assert c.post("/v1/search", json={"query": "rotation"}).status_code == 200  # searches never wait
            gate.set()
            for t in threads:
                t.join(30)
            assert codes == [200, 200]
            assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 200
            assert "ragkit_generation_queue_depth 0.0" in c.get("/metrics").text
    finally:
        gate.set()


def test_a_question_that_abstains_on_relevance_is_answered_while_the_lane_is_full(serve) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()  # the one generation slot stays taken until the off-topic questions are answered
    gen = SlowGenerator(ANSWER, gate=gate)
    # HashEmbedder cosines to the best hit: QUESTION 0.47, the off-topic one 0.38; this floor gates only the latter
    url, _, _ = serve(gen, config={"generator.min_relevance": 0.42}, generators=1, queue=0)
    off = "zebra giraffe elephant safari"
    chat = {"messages": [{"role": "user", "content": off}]}

    def hold() -> None:
        with client(url) as c:
            c.post("/v1/ask", json={"question": QUESTION})

    holder = threading.Thread(target=hold)
    try:
        holder.start()
        assert wait_until(lambda: gen.running == 1)
        with client(url) as c:
            assert c.post("/v1/ask", json={"question": QUESTION}).status_code == 429  # the lane is full
            r = c.post("/v1/ask", json={"question": off})
            assert r.status_code == 200, r.text
            assert r.json()["abstained"] is True and r.json()["flags"][0]["kind"] == "low_relevance"
            with c.stream("POST", "/v1/ask/stream", json={"question": off}) as s:
                assert s.status_code == 200
                got = [(n, d) for n, d in events(s.iter_lines()) if n != "comment"]
            assert [n for n, _ in got] == ["sources", "answer", "done"] and got[1][1]["abstained"] is True
            r = c.post("/v1/chat/completions", json=chat)
            assert r.status_code == 200, r.text
            assert r.json()["ragkit"]["abstained"] is True and r.json()["choices"][0]["message"]["content"]
            with c.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as s:
                assert s.status_code == 200
                chunks = [d for n, d in events(s.iter_lines()) if n == "message" and d != "[DONE]"]
            assert chunks[-1]["ragkit"]["abstained"] is True
            assert (
                "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == chunks[-1]["ragkit"]["text"]
            )
            assert len(gen.calls) == 1 and 'ragkit_answers_total{abstained="true"} 4.0' in c.get("/metrics").text
    finally:
        gate.set()
        holder.join(30)


def test_the_official_openai_client_works_unchanged(serve) -> None:  # type: ignore[no-untyped-def]
    openai = pytest.importorskip("openai")
    url, kb, _ = serve(require_keys=True)
    key, _ = kb.keys.create("alice", ["staff"], "read")
    api = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    assert "ragkit" in [m.id for m in api.models.list()]
    done = api.chat.completions.create(model="ragkit", messages=[{"role": "user", "content": QUESTION}])
    assert "90 days" in done.choices[0].message.content
    extension = done.model_extra["ragkit"]
    assert extension["citations"][0]["uri"].endswith("key-rotation.md") and extension["abstained"] is False
    assert done.usage.completion_tokens > 0
    stream = api.chat.completions.create(
        model="ragkit",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == ANSWER
    last = next(ch for ch in reversed(chunks) if ch.choices)
    assert last.choices[0].finish_reason == "stop" and last.model_extra["ragkit"]["citations"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    emb = api.embeddings.create(model="ragkit", input=["rotate keys", "hotel costs"])  # base64 on the wire
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == kb.embedder.dim
    assert abs(sum(x * x for x in emb.data[0].embedding) - 1.0) < 1e-4
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="rk_wrong", max_retries=0).models.list()


def test_ragkit_answers_through_ragkit_serve_with_its_own_openai_backend(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ragkit.generation.openai_http import OpenAIGenerator

    url, kb, _ = serve(require_keys=True)
    key, _ = kb.keys.create("bot", [], "read")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    other = make_kb(tmp_path / "client-kb", [SAMPLE_CORPUS], OpenAIGenerator(f"{url}/v1", "ragkit"))  # type: ignore[arg-type]
    try:
        seen: list[str] = []
        answer = other.ask(QUESTION, on_text=seen.append)
        assert "90 days" in answer.text and len(seen) > 3  # streamed over SSE, piece by piece
        assert answer.generator.startswith("openai:")
    finally:
        other.close()


def test_concurrent_searches_share_batches_and_get_their_own_hits(serve) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from ragkit.testing import HashEmbedder

    class SlowEmbedder(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            time.sleep(0.2)  # the KB lane stays busy while the other requests arrive
            return super().embed(texts)

    url, kb, _ = serve(kb_threads=1)
    queries = [f"{w} policy {i}" for i, w in enumerate(["key rotation", "hotel", "laptop", "retention", "on-call"] * 5)]
    expected = {q: [h.chunk.id for h in kb.search(q)] for q in queries}
    kb.embedder = SlowEmbedder(64, name="hash")
    batcher = serve.apps[url].state.ragkit.batcher

    def one(q: str) -> tuple[str, list[int], str]:
        with client(url) as c:
            r = c.post("/v1/search", json={"query": q})
            return q, [h["chunk"]["id"] for h in r.json()["hits"]], r.headers["server-timing"]

    with ThreadPoolExecutor(len(queries)) as pool:
        got = list(pool.map(one, queries))
    assert all(ids == expected[q] for q, ids, _ in got)  # each request gets its own query's hits
    assert batcher.queries == len(queries) and batcher.batches <= len(queries) // 2, (batcher.batches, len(queries))
