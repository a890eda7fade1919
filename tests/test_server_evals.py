"""Evaluation runs over HTTP: started as a job (write scope) that reads as its starter, listed and served only
to that reader (and admins), datasets only from the request (a built-in name or an uploaded file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLE_CORPUS
from fastapi.testclient import TestClient
from test_server_support import auth, make_kb, wait_until

from ragkit.server import create_app

pytestmark = pytest.mark.usefixtures("hashed")
QUESTIONS = [
    {"question": "How often must production API keys be rotated?", "answer": "every 90 days",
     "gold_uris": ["*key-rotation.md"]},
    {"question": "What is the nightly hotel cap?", "gold_uris": ["*expenses.pdf"]},
]  # fmt: skip


def test_an_eval_run_is_started_listed_and_its_report_served_to_its_reader_only(tmp_path: Path) -> None:
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS])
    keys = {
        "alice": kb.keys.create("alice", ["staff"], "write")[0],
        "bob": kb.keys.create("bob", ["staff"], "write")[0],
        "carol": kb.keys.create("carol", [], "read")[0],
        "root": kb.keys.create("root", [], "admin")[0],
    }
    data = "\n".join(json.dumps(q) for q in QUESTIONS).encode()
    with TestClient(create_app(kb, require_keys=True, warm=False)) as c:
        alice = auth(keys["alice"])
        r = c.post("/v1/evals", headers=alice, files={"file": ("qs.jsonl", data, "application/json")},
                   data={"name": "smoke"})  # fmt: skip
        assert r.status_code == 202, r.text
        job = r.json()["job"]

        def state() -> dict:  # type: ignore[type-arg]
            return c.get(f"/v1/evals/jobs/{job}", headers=alice).json()

        assert wait_until(lambda: state()["state"] in ("done", "failed"), timeout=60), state()
        done = state()
        assert done["state"] == "done", done
        assert done["total"] == 2 and done["metrics"] and done["run"].endswith("smoke")
        runs = c.get("/v1/evals", headers=alice).json()["runs"]
        assert (
            [r["id"] for r in runs] == [done["run"]]
            and runs[0]["finished"]
            and runs[0]["reader"] == "alice (groups staff)"
        )
        page = c.get(runs[0]["report"], headers=alice)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        # another reader neither lists nor fetches it; an admin does
        assert c.get("/v1/evals", headers=auth(keys["bob"])).json()["runs"] == []
        assert c.get(runs[0]["report"], headers=auth(keys["bob"])).status_code == 404
        assert c.get(f"/v1/evals/jobs/{job}", headers=auth(keys["bob"])).status_code == 404
        assert c.get(runs[0]["report"], headers=auth(keys["root"])).status_code == 200
        # only the request says what to evaluate
        bad = c.post("/v1/evals", headers=alice, data={"dataset": "/etc/passwd"})
        assert bad.status_code == 400 and "halueval-qa" in bad.json()["error"]
        both = c.post("/v1/evals", headers=alice, data={"dataset": "halueval-qa:2"},
                      files={"file": ("qs.jsonl", data, "application/json")})  # fmt: skip
        assert both.status_code == 400
        assert c.get("/v1/evals/..%2F..%2Fragkit.toml/report.html", headers=alice).status_code == 404
        assert c.post("/v1/evals", headers=auth(keys["carol"]), data={"dataset": "halueval-qa:2"}).status_code == 403
    kb.close()
