"""Streaming through a reverse proxy: Debian's nginx on loopback with the README's location block in front of a
live `ragkit serve`; the answer's tokens must arrive one by one, not all at the end. Skipped without nginx
(`apt-get install nginx-light`)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_CORPUS
from test_server_support import LiveServer, SlowGenerator, client, events, make_kb, wait_until

from ragkit.server import create_app

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = [pytest.mark.usefixtures("hashed"), pytest.mark.skipif(NGINX is None, reason="nginx is not installed")]
REPLY = "Production API keys must be rotated every 90 days by the security team [1]."  # 14 words


def readme_location_block(upstream: str) -> str:
    """The nginx snippet of README's Server section, pointed at the test's server."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```nginx\n(location / \{.*?\n\})\n```", text, re.S)
    assert block, "README's Server section has no nginx location block"
    return block.group(1).replace("http://127.0.0.1:8000", upstream)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(tmp: Path, location: str) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    port = free_port()
    temp = {name: tmp / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for d in temp.values():
        d.mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
daemon off; master_process off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]}; proxy_temp_path {temp["proxy"]}; fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]}; scgi_temp_path {temp["scgi"]};
    server {{
        listen 127.0.0.1:{port};
        {location}
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)  # type: ignore[list-item]

    def up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    assert wait_until(up, timeout=10), (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("config", ["readme snippet", "nginx defaults (buffering on)"])
def test_tokens_arrive_one_by_one_through_nginx(tmp_path: Path, config: str) -> None:
    kb = make_kb(tmp_path / "kb", [SAMPLE_CORPUS], SlowGenerator(REPLY, delay=0.08))
    server = LiveServer(create_app(kb, require_keys=False, warm=False))
    if config == "readme snippet":
        location = readme_location_block(server.url)
    else:  # the server's X-Accel-Buffering: no must be enough on its own
        location = f"location / {{ proxy_pass {server.url}; proxy_http_version 1.1; }}"
    (tmp_path / "nginx").mkdir()
    proxy, url = start_nginx(tmp_path / "nginx", location)
    try:
        arrivals: list[float] = []
        with (
            client(url) as c,
            c.stream("POST", "/v1/ask/stream", json={"question": "How often are keys rotated?"}) as r,
        ):
            assert r.status_code == 200
            t0 = time.perf_counter()
            names = []
            for name, _ in events(r.iter_lines()):
                names.append(name)
                if name == "token":
                    arrivals.append(time.perf_counter() - t0)
        assert names[0] == "sources" and names[-2:] == ["answer", "done"] and len(arrivals) == 14
        # incremental: the tokens are spread over the generation (~1.1 s), not delivered together at its end
        assert arrivals[-1] - arrivals[0] > 0.5, arrivals
        assert sum(1 for a in arrivals if a < arrivals[-1] - 0.3) >= 5, arrivals
    finally:
        proxy.terminate()
        proxy.wait(10)
        server.close()
        kb.close()
