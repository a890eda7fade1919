"""ragkit serve, in process (FastAPI's TestClient): routes, JSON shapes, errors, auth basics, limits, metrics.
The generator and embedder are fakes; the routes, auth, limits and the KB are real."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import SAMPLE_CORPUS
from fastapi.testclient import TestClient
from test_server_support import ANSWER, SlowGenerator, make_kb

from ragkit.server import ServerSettings, create_app

pytestmark = pytest.mark.usefixtures("hashed")


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS])
    yield kb
    kb.close()


@pytest.fixture
def local(kb):  # type: ignore[no-untyped-def]
    """A key-less loopback server (no access control, no keys)."""
    with TestClient(create_app(kb, require_keys=False, warm=False)) as c:
        yield c


def test_health_readiness_and_openapi(local: TestClient) -> None:
    assert local.get("/healthz").json() == {"ok": True}
    assert local.get("/readyz").status_code == 200
    spec = local.get("/openapi.json").json()
    routes = ("/v1/search", "/v1/ask", "/v1/ask/stream", "/v1/documents", "/v1/chat/completions", "/v1/jobs/{job_id}")
    for path in routes:
        assert path in spec["paths"], path


def test_search_returns_ranked_hits_with_chunk_spans_and_a_server_timing(local: TestClient) -> None:
    r = local.post("/v1/search", json={"query": "how often are API keys rotated", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["k"] == 3 and body["mode"] == "hybrid" and 1 <= len(body["hits"]) <= 3
    hit = body["hits"][0]
    assert hit["rank"] == 1 and {"id", "doc_id", "uri", "text", "start", "end"} <= set(hit["chunk"])
    assert "kb;dur=" in r.headers["server-timing"]
    r = local.post("/v1/search", json={"query": "rotation", "mode": "keyword", "filters": ["source=*.md"], "mmr": 0.5})
    assert r.status_code == 200 and all(h["chunk"]["uri"].endswith(".md") for h in r.json()["hits"])


def test_ask_returns_the_whole_checked_answer(local: TestClient) -> None:
    r = local.post("/v1/ask", json={"question": "How often must production API keys be rotated?"})
    assert r.status_code == 200, r.text
    a = r.json()
    assert "90 days" in a["text"] and a["abstained"] is False
    for key in ("citations", "flags", "unsupported", "relevance", "timings", "hits", "raw_text", "completion_tokens"):
        assert key in a
    c = a["citations"][0]
    assert {"n", "chunk_id", "uri", "start", "end", "kind", "support", "sentence"} <= set(c)
    assert c["uri"].endswith("key-rotation.md")


def test_errors_are_json_4xx_with_a_message(local: TestClient) -> None:
    r = local.post("/v1/search", json={"query": "x", "filters": ["sourse=*.pdf"]})
    assert r.status_code == 400 and "sourse" in r.json()["error"]
    r = local.post("/v1/search", json={"query": ""})
    assert r.status_code == 422 and r.json()["error"].startswith("invalid request")
    r = local.post("/v1/search", json={"query": "x", "mode": "fuzzy"})
    assert r.status_code == 422
    r = local.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()
    assert local.get("/v1/nothing-here").json() == {"error": "Not Found"}


def test_documents_list_get_text_and_delete(local: TestClient, kb) -> None:  # type: ignore[no-untyped-def]
    listing = local.get("/v1/documents").json()
    assert listing["total"] == 5 and len(listing["documents"]) == 5
    doc = next(d for d in listing["documents"] if d["uri"].endswith("key-rotation.md"))
    assert local.get(f"/v1/documents/{doc['id']}").json()["uri"] == doc["uri"]
    text = local.get(f"/v1/documents/{doc['id']}/text").json()
    chunk = next(c for c in kb.chunks(list(kb.chunk_ids())).values() if c.doc_id == doc["id"])
    assert text["text"][chunk.start : chunk.end] == chunk.text  # citation spans index the text
    window = local.get(f"/v1/documents/{doc['id']}/text", params={"start": chunk.start, "end": chunk.end}).json()
    assert window["text"] == chunk.text
    assert local.get("/v1/documents/999999").status_code == 404
    r = local.delete(f"/v1/documents/{doc['id']}")
    assert r.status_code == 200 and r.json()["deleted"] == doc["uri"]
    assert local.get(f"/v1/documents/{doc['id']}").status_code == 404
    assert local.get("/v1/documents").json()["total"] == 4
    assert kb.check(repair=False).ok


def test_an_oversized_body_is_413(kb) -> None:  # type: ignore[no-untyped-def]
    settings = ServerSettings(max_body_bytes=1000, max_upload_bytes=5000)
    with TestClient(create_app(kb, require_keys=False, settings=settings, warm=False)) as c:
        r = c.post("/v1/search", json={"query": "x" * 2000})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        r = c.post("/v1/documents", files={"files": ("big.md", b"word " * 2000, "text/markdown")})
        assert r.status_code == 413 and "upload" in r.json()["error"]
        r = c.post("/v1/documents", files={"files": ("small.md", b"# Small\n\nA small note.", "text/markdown")})
        assert r.status_code == 202


def test_metrics_count_requests_answers_and_the_queue(local: TestClient) -> None:
    local.post("/v1/search", json={"query": "hotel"})
    local.post("/v1/ask", json={"question": "How often must production API keys be rotated?"})
    text = local.get("/metrics").text
    assert 'ragkit_http_requests_total{method="POST",route="/v1/search",status="200"} 1.0' in text
    assert "ragkit_generation_queue_depth 0.0" in text
    assert 'ragkit_answers_total{abstained="false"} 1.0' in text
    assert 'ragkit_stage_seconds_count{stage="generate"} 1.0' in text


def test_cors_is_off_by_default_and_an_allow_list_when_set(kb) -> None:  # type: ignore[no-untyped-def]
    origin = {"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(kb, require_keys=False, warm=False)) as c:
        assert "access-control-allow-origin" not in c.options("/v1/search", headers=origin).headers
    with TestClient(create_app(kb, require_keys=False, cors_origins=["https://intranet.example"], warm=False)) as c:
        r = c.options("/v1/search", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://intranet.example"
        bad = c.options("/v1/search", headers={**origin, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers


def test_keys_are_required_when_asked_and_a_wrong_key_is_401(kb) -> None:  # type: ignore[no-untyped-def]
    key, _ = kb.keys.create("alice", ["staff"], "read")
    with TestClient(create_app(kb, require_keys=True, settings=ServerSettings(auth_cache_s=0.3), warm=False)) as c:
        assert c.post("/v1/search", json={"query": "hotel"}).status_code == 401
        r = c.post("/v1/search", json={"query": "hotel"}, headers={"Authorization": "Bearer rk_wrong"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        ok = {"Authorization": f"Bearer {key}"}
        assert c.post("/v1/search", json={"query": "hotel"}, headers=ok).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes need no key
        assert c.delete("/v1/documents/1", headers=ok).status_code == 403  # a read key does not delete
        kb.keys.revoke("alice")
        time.sleep(0.3)  # an authenticated key is trusted for auth_cache_s without a lookup
        assert c.post("/v1/search", json={"query": "hotel"}, headers=ok).status_code == 401


def test_an_access_controlled_kb_cannot_be_served_without_keys(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb", [], **{"security.access_control": True})
    with pytest.raises(Exception, match="API key"):
        create_app(kb, require_keys=False)
    kb.close()


def test_the_rate_limit_answers_429_with_retry_after(kb) -> None:  # type: ignore[no-untyped-def]
    settings = ServerSettings(rate_per_minute=1, burst=3)  # one request a minute after the burst: no refill here
    with TestClient(create_app(kb, require_keys=False, settings=settings, warm=False)) as c:
        codes = [c.get("/v1/documents").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/v1/documents")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "slow down" in r.json()["error"]


def test_embeddings_and_models_in_openai_shapes(local: TestClient, kb) -> None:  # type: ignore[no-untyped-def]
    assert local.get("/v1/models").json()["data"][0]["id"] == "ragkit"
    r = local.post("/v1/embeddings", json={"input": ["hello world", "keys"], "model": "ragkit"}).json()
    assert len(r["data"]) == 2 and len(r["data"][0]["embedding"]) == kb.embedder.dim


def test_chat_completions_answers_the_last_user_message_with_citations(local: TestClient) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "How often are API keys rotated?"},
    ]
    body = {"model": "ragkit", "messages": messages}
    r = local.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["object"] == "chat.completion" and "90 days" in data["choices"][0]["message"]["content"]
    assert data["ragkit"]["citations"][0]["uri"].endswith("key-rotation.md") and data["usage"]["total_tokens"] > 0
    no_question = {"messages": [{"role": "system", "content": "x"}]}
    assert local.post("/v1/chat/completions", json=no_question).status_code == 422


def test_a_scripted_reply_reaches_the_client_unchanged(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS], SlowGenerator(ANSWER))
    with TestClient(create_app(kb, require_keys=False, warm=False)) as c:
        r = c.post("/v1/ask", json={"question": "How often must production API keys be rotated?"})
        assert r.json()["raw_text"] == ANSWER
    kb.close()


def test_errors_never_name_the_servers_paths(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    empty = make_kb(root, [])
    asks = [
        ("/v1/ask", {"question": "How often are keys rotated?"}),
        ("/v1/ask/stream", {"question": "How often are keys rotated?"}),
        ("/v1/search", {"query": "keys"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "How often are keys rotated?"}]}),
    ]
    with TestClient(create_app(empty, require_keys=False, warm=False)) as c:
        for route, body in asks:
            r = c.post(route, json=body)
            error = r.json()["error"]
            assert r.status_code == 409 and str(tmp_path) not in error and str(Path.cwd()) not in error, error
            assert error == "the knowledge base holds no chunks yet; run: ragkit ingest PATH --kb KB"
    empty.close()


def test_a_busy_kb_is_a_409_without_its_path(kb) -> None:  # type: ignore[no-untyped-def]
    from ragkit.kbdir import WriterLock

    with TestClient(create_app(kb, require_keys=False, warm=False)) as c:
        doc = c.get("/v1/documents").json()["documents"][0]
        with WriterLock(kb.paths):  # an ingest holds the KB
            r = c.delete(f"/v1/documents/{doc['id']}")
        error = r.json()["error"]
        assert r.status_code == 409 and str(kb.root) not in error and "/" not in error.split("(")[0], error
        assert error.startswith("the knowledge base is locked by PID") and "wait for it to finish" in error
        assert c.delete(f"/v1/documents/{doc['id']}").status_code == 200  # the lock is gone: it goes


def test_redact_hides_the_kb_its_files_and_the_working_folder_only(tmp_path: Path) -> None:
    from ragkit.server.redact import redact

    root = tmp_path / "kb"
    assert redact(f"cannot read {root}/uploads/alice/a.pdf: denied", root) == "cannot read the knowledge base: denied"
    assert redact(f"no model at {Path.cwd()}/models/x", root) == "no model at the server's folder"
    kept = f"{root}2/a.md, http://host{root}, source=/docs/*.md"  # another folder, a URL, a filter: untouched
    assert redact(kept, root) == kept
