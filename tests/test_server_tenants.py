"""Two tenants on one access-controlled KB behind ragkit serve: keys map to principals, and no route shows one
tenant the other's documents (50 cross-tenant probes, 0 leaks); uploads become jobs that only their creator
sees, granted to the uploader; 401 without or with a wrong key; 404 (not 403) for another tenant's ids."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_server_support import SlowGenerator, auth, make_kb

from ragkit.access import admin
from ragkit.server import create_app

pytestmark = pytest.mark.usefixtures("hashed")

ACME = {
    "acme-keys.md": "# Acme key policy\n\nAcme rotates production API keys every 30 days. The acme vault is Zephyr.",
    "acme-travel.md": "# Acme travel\n\nAcme staff book hotels through Orbitz-Acme; the nightly cap is 180 euros.",
}
GLOBEX = {
    "globex-keys.md": "# Globex key policy\n\nGlobex rotates production API keys every 45 days. Its vault is Quasar.",
    "globex-travel.md": "# Globex travel\n\nGlobex staff book hotels through Travelgx; the nightly cap is 220 dollars.",
}
# what would show a tenant's documents to the other (never in a probe's own words, which responses echo)
SECRETS = {
    "acme": ("/acme/", "Zephyr", "Orbitz", "180 euros"),
    "globex": ("/globex/", "Quasar", "Travelgx", "220 dollars"),
}


@pytest.fixture
def tenants(tmp_path: Path):  # type: ignore[no-untyped-def]
    """(client, keys, doc ids by tenant, kb): acme and globex documents, each tenant's group granted its own."""
    reply = SlowGenerator("The policy says every 30 days [1].")
    kb = make_kb(tmp_path / "kb", [], reply, **{"security.access_control": True})
    for name, docs in (("acme", ACME), ("globex", GLOBEX)):
        folder = tmp_path / name
        folder.mkdir()
        for file, text in docs.items():
            (folder / file).write_text(text)
        kb.ingest([folder], allow=[f"group:{name}"])
    keys = {
        "acme": kb.keys.create("alice", ["acme"], "write")[0],
        "globex": kb.keys.create("bob", ["globex"], "read")[0],
        "admin": kb.keys.create("root", [], "admin")[0],
    }
    every = kb.as_principal(admin("test")).documents.list()
    ids = {t: [d.id for d in every if t in d.uri] for t in ("acme", "globex")}
    with TestClient(create_app(kb, require_keys=True, warm=False)) as c:
        yield c, keys, ids, kb
    kb.close()


def test_no_key_or_a_wrong_key_is_401_on_every_route(tenants) -> None:  # type: ignore[no-untyped-def]
    c, _, ids, _ = tenants
    doc = ids["acme"][0]
    calls = [("post", "/v1/search", {"json": {"query": "keys"}}), ("post", "/v1/ask", {"json": {"question": "keys?"}}),
             ("post", "/v1/ask/stream", {"json": {"question": "keys?"}}), ("get", "/v1/documents", {}),
             ("get", f"/v1/documents/{doc}", {}), ("get", f"/v1/documents/{doc}/text", {}),
             ("delete", f"/v1/documents/{doc}", {}), ("get", "/v1/models", {}), ("get", "/metrics", {}),
             ("post", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "keys?"}]}}),
             ("post", "/v1/embeddings", {"json": {"input": "keys"}}), ("get", "/v1/jobs/abc", {})]  # fmt: skip
    for method, path, kwargs in calls:
        for headers in ({}, auth("rk_not-a-key"), auth("sk-something-else"), {"Authorization": "Basic abc"}):
            r = getattr(c, method)(path, headers=headers, **kwargs)
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert "API key" in r.json()["error"]


def _leaks(tenant: str, response_text: str) -> list[str]:
    other = "globex" if tenant == "acme" else "acme"
    return [s for s in SECRETS[other] if s.lower() in response_text.lower()]


def test_fifty_cross_tenant_probes_leak_nothing(tenants) -> None:  # type: ignore[no-untyped-def]
    c, keys, ids, _ = tenants
    probes = 0
    leaks: list[tuple[str, str, list[str]]] = []
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        h = auth(keys[tenant])
        other_name = other.capitalize()
        queries = [f"{other_name} key policy", f"{other} vault", f"hotels through {other}", "nightly cap",
                   "production API keys rotated"]  # fmt: skip
        responses = []
        for q in queries:
            for mode in ("hybrid", "dense", "keyword"):
                responses.append(c.post("/v1/search", headers=h, json={"query": q, "mode": mode, "k": 10}))
            responses.append(c.post("/v1/search", headers=h, json={"query": q, "filters": [f"source=*{other}*"]}))
        for q in queries[:3]:
            responses.append(c.post("/v1/ask", headers=h, json={"question": q}))
            responses.append(c.post("/v1/ask/stream", headers=h, json={"question": q}))
            chat = {"messages": [{"role": "user", "content": q}]}
            responses.append(c.post("/v1/chat/completions", headers=h, json=chat))
        responses.append(c.get("/v1/documents", headers=h))
        for doc in ids[other]:
            responses += [c.get(f"/v1/documents/{doc}", headers=h), c.get(f"/v1/documents/{doc}/text", headers=h)]
        for r in responses:
            probes += 1
            assert r.status_code in (200, 404), (r.status_code, r.text)
            if found := _leaks(tenant, r.text):
                leaks.append((tenant, r.request.url.path, found))
        # another tenant's ids are "not found", exactly like ids that do not exist
        for doc in ids[other]:
            missing = c.get("/v1/documents/999999", headers=h)
            for path in (f"/v1/documents/{doc}", f"/v1/documents/{doc}/text"):
                r = c.get(path, headers=h)
                assert (r.status_code, r.json()) == (missing.status_code, missing.json())
    assert probes >= 50 and not leaks, leaks
    # each tenant does see its own documents
    mine = c.get("/v1/documents", headers=auth(keys["acme"])).json()
    assert mine["total"] == 2 and all("acme" in d["uri"] for d in mine["documents"])
    hits = c.post("/v1/search", headers=auth(keys["acme"]), json={"query": "vault"}).json()["hits"]
    assert hits and all("acme" in h["chunk"]["uri"] for h in hits)


def test_a_write_key_cannot_delete_another_tenants_document_and_an_admin_sees_all(tenants) -> None:  # type: ignore[no-untyped-def]
    c, keys, ids, kb = tenants
    r = c.delete(f"/v1/documents/{ids['globex'][0]}", headers=auth(keys["acme"]))
    assert r.status_code == 404 and "globex" not in r.text.lower()
    assert c.delete(f"/v1/documents/{ids['acme'][0]}", headers=auth(keys["globex"])).status_code == 403  # read key
    assert c.get("/v1/documents", headers=auth(keys["admin"])).json()["total"] == 4
    r = c.delete(f"/v1/documents/{ids['acme'][0]}", headers=auth(keys["acme"]))
    assert r.status_code == 200 and c.get("/v1/documents", headers=auth(keys["admin"])).json()["total"] == 3
    assert any(e["action"] == "admin-read" and e["actor"] == "root" for e in kb.acl.log())


def _wait_job(c: TestClient, job: str, key: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = c.get(f"/v1/jobs/{job}", headers=auth(key)).json()
        if state["state"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish: {state}")


def test_an_upload_is_a_job_its_creator_sees_and_the_document_is_granted_to_the_uploader(tenants) -> None:  # type: ignore[no-untyped-def]
    c, keys, _, kb = tenants
    alice, bob = auth(keys["acme"]), auth(keys["globex"])
    note = b"# Alice's note\n\nThe acme offsite is in Lisbon, booked through Orbitz-Acme."
    r = c.post("/v1/documents", headers=alice, files={"files": ("../../offsite note.md", note, "text/markdown")},
               data={"meta": ["team=ops"]})  # fmt: skip
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    assert c.get(f"/v1/jobs/{job}", headers=bob).status_code == 404  # someone else's job does not exist
    done = _wait_job(c, job, keys["acme"])
    assert done["state"] == "done" and done["report"]["ingested"] == 1 and done["files"] == ["offsite_note.md"]
    assert [j["id"] for j in c.get("/v1/jobs", headers=alice).json()["jobs"]] == [job]
    assert c.get("/v1/jobs", headers=bob).json()["jobs"] == []
    assert c.get(f"/v1/jobs/{job}", headers=auth(keys["admin"])).status_code == 200
    hits = c.post("/v1/search", headers=alice, json={"query": "offsite Lisbon"}).json()["hits"]
    assert hits[0]["chunk"]["uri"].endswith("uploads/alice/offsite_note.md")
    theirs = c.post("/v1/search", headers=bob, json={"query": "offsite Lisbon"}).json()["hits"]
    assert not any("Lisbon" in h["chunk"]["text"] or "uploads/alice" in h["chunk"]["uri"] for h in theirs)
    uri = hits[0]["chunk"]["uri"]
    assert kb.acl.show([uri])[uri] == ["user:alice"]  # the uploader, nobody else (no grant was named)
    assert kb.check(repair=False).ok
    # a read key cannot upload; a bad grant is a 400 that names the form of a grant
    assert (
        c.post("/v1/documents", headers=bob, files={"files": ("x.md", b"# x\n\ny", "text/markdown")}).status_code == 403
    )
    bad = c.post("/v1/documents", headers=alice, files={"files": ("x.md", b"# x", "text/markdown")},
                 data={"allow": ["grp:hr"]})  # fmt: skip
    assert bad.status_code == 400 and "group:NAME" in bad.json()["error"]


def test_an_upload_with_grants_is_shared_and_a_job_can_be_cancelled(tenants, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c, keys, _, kb = tenants
    alice = auth(keys["acme"])
    files = [("files", (f"shared-{i}.md", f"# Shared {i}\n\nJoint memo number {i}.".encode(), "text/markdown"))
             for i in range(3)]  # fmt: skip
    r = c.post("/v1/documents", headers=alice, files=files, data={"allow": ["group:globex"]})
    done = _wait_job(c, r.json()["job"], keys["acme"])
    assert done["state"] == "done" and done["report"]["ingested"] == 3
    hits = c.post("/v1/search", headers=auth(keys["globex"]), json={"query": "joint memo"}).json()["hits"]
    assert hits and all("shared-" in h["chunk"]["uri"] for h in hits[:3])
    # a job cancelled before it starts ends "cancelled" and ingests nothing
    jobs = c.app.state.ragkit.jobs  # type: ignore[attr-defined]
    gate = __import__("threading").Event()
    jobs._pool.submit(gate.wait, 10)  # the single ingest worker is busy
    r = c.post("/v1/documents", headers=alice, files={"files": ("late.md", b"# Late\n\nA late memo.", "text/markdown")})
    job = r.json()["job"]
    assert c.delete(f"/v1/jobs/{job}", headers=alice).json()["state"] == "queued"
    gate.set()
    assert _wait_job(c, job, keys["acme"])["state"] == "cancelled"
    assert "late.md" not in json.dumps(c.get("/v1/documents", headers=alice).json())
