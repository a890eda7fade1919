"""`ragkit keys` and `ragkit serve`: keys shown once and stored hashed, serve's safe defaults, and (slow) a real
`ragkit serve` process on the sample corpus answering with the bundled models over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import SAMPLE_CORPUS, run
from test_server_support import events

from ragkit.cli.serve_cmd import is_loopback


@pytest.fixture
def small_kb(tmp_path: Path, hashed: None) -> Path:
    root = tmp_path / "kb"
    assert run("ingest", SAMPLE_CORPUS / "security", "--kb", root).exit_code == 0
    return root


def test_keys_create_list_revoke(small_kb: Path) -> None:
    made = run("keys", "create", "--kb", small_kb, "--name", "alice", "--groups", "hr,staff", "--scope", "write")
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("rk_") and "shown once" in made.output
    assert key not in (small_kb / "ragkit.db").read_bytes().decode("latin-1")  # only its hash is stored
    listed = json.loads(run("keys", "list", "--kb", small_kb, "--json").output)
    [record] = listed["keys"]
    assert record["name"] == "alice" and record["groups"] == ["hr", "staff"] and record["scope"] == "write"
    assert key.startswith(record["prefix"]) and "key" not in record
    assert "alice" in run("keys", "list", "--kb", small_kb).output
    assert run("keys", "create", "--kb", small_kb, "--name", "bob", "--scope", "root").exit_code == 2
    assert run("keys", "create", "--kb", small_kb, "--name", "bad name!").exit_code == 2
    assert run("keys", "revoke", "alice", "--kb", small_kb).output.strip() == "revoked 1 key"
    assert run("keys", "revoke", "alice", "--kb", small_kb).exit_code == 1  # nothing live left


def test_serve_refuses_a_public_address_without_keys_in_one_line(small_kb: Path) -> None:
    res = run("serve", "--kb", small_kb, "--host", "0.0.0.0")
    assert res.exit_code == 1
    assert f"ragkit keys create --kb {small_kb} --name NAME --groups G [--scope read|write|admin]" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_serve_refuses_an_access_controlled_kb_without_keys(tmp_path: Path, hashed: None) -> None:
    root = tmp_path / "kb"
    assert run("ingest", SAMPLE_CORPUS / "security", "--kb", root, "--access-control").exit_code == 0
    res = run("serve", "--kb", root)
    assert res.exit_code == 1 and "access-controlled" in res.output and "ragkit keys create" in res.output


def test_serve_says_in_one_line_that_its_port_is_taken(small_kb: Path) -> None:
    with socket.socket() as taken:  # uvicorn logged its own error and exited 3, ingest's "partial" code
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run("serve", "--kb", small_kb, "--port", port)
    assert res.exit_code == 1, res.output
    assert (
        res.output.strip() == f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); choose "
        "another --port or stop what uses it"
    )


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.5", "::", "example.com", "192.168.1.1"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_ragkit_serve_answers_with_the_bundled_models(built_kb: Path, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(built_kb, kb)
    key = run("keys", "create", "--kb", kb, "--name", "alice", "--scope", "read").output.strip().splitlines()[-1]
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", "from ragkit.cli import main; main()", "serve", "--kb", str(kb), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}" in first and "/docs" in first, first
        url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            # the line comes once the port is bound: a client that read it connects at once, no retry
            assert c.get("/healthz").status_code == 200
            deadline = time.monotonic() + 120
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            assert (
                c.post("/v1/search", json={"query": "hotel"}, headers={"Authorization": "Bearer rk_x"}).status_code
                == 401
            )
            question = "How often must production API keys be rotated?"
            with c.stream("POST", "/v1/ask/stream", json={"question": question}) as r:
                got = [(n, d) for n, d in events(r.iter_lines()) if n != "comment"]
            names = [n for n, _ in got]
            assert names[0] == "sources" and names[-2:] == ["answer", "done"] and names.count("token") >= 3
            answer = got[-2][1]
            assert "90" in answer["text"] and not answer["abstained"]
            assert any(cit["uri"].endswith("key-rotation.md") for cit in answer["citations"])
            timing = c.post("/v1/search", json={"query": "key rotation"}).headers["server-timing"]
            assert timing.startswith("kb;dur=")
    finally:
        proc.terminate()
        proc.wait(20)
