"""`ragkit serve`: the knowledge base's HTTP API (ragkit.server) on uvicorn, safe by default.

It binds 127.0.0.1. Without API keys it answers only on loopback, and only when the KB is not access-controlled;
binding another address without a live key refuses to start and says how to create one. With keys every /v1
request needs `Authorization: Bearer rk_...`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ragkit.cli.common import DbOpt, KbOpt, db_override, fail, out, user_errors


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_command(
    kb: KbOpt = Path("kb"),
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind; other than loopback needs API keys.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=0, max=65535)] = 8000,
    cors: Annotated[
        list[str] | None,
        typer.Option(
            "--cors", help="Allow browser pages from this origin (repeatable) [default: CORS off].", show_default=False
        ),
    ] = None,  # fmt: skip
    generators: Annotated[int, typer.Option("--generators", help="Answers generated at once.", min=1)] = 1,
    queue: Annotated[int, typer.Option("--queue", help="Answers waiting beyond those; more get 429.", min=0)] = 8,
    rate: Annotated[float, typer.Option("--rate", help="Requests per minute per API key (0: no limit).", min=0)] = 600,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest JSON request body.", min=0.001)] = 1.0,
) -> None:
    """Serve the knowledge base over HTTP: search, ask (streamed), documents, uploads, OpenAI-compatible routes.

    Prints the URL and the API docs page (/docs). Stop it with Ctrl-C.
    """
    # torch's OpenMP threads spin while they wait for work; beside a server's other threads (and other processes)
    # that spinning takes the cores: measured 3-10x slower generation and searches on 2 shared cores
    # (docs/benchmarks.md, Server). Set before torch loads; an explicit OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import ragkit

    try:
        import uvicorn

        from ragkit.server import ServerSettings, create_app
    except ImportError:
        fail("ragkit serve needs the server extra: pip install 'ragkit[server]'")
    with user_errors():
        base = ragkit.open(kb, create=False, **db_override(db))
        keys = base.keys.any()
        local = is_loopback(host)
        if (not local or base.acl.enabled) and not keys:
            why = f"binding {host}" if not local else f"{kb} is access-controlled and"
            base.close()
            fail(
                f"{why} needs an API key; create one with: ragkit keys create --kb {kb} --name NAME --groups G "
                "[--scope read|write|admin]"
            )
        check_port(host, port)
        settings = ServerSettings(
            generators=generators,
            queue=queue,
            rate_per_minute=rate,
            max_body_bytes=int(max_body_mb * (1 << 20)),
            max_upload_bytes=int(base.config.ingest.max_file_mb * (1 << 20)),
        )
        app = create_app(base, require_keys=keys or base.acl.enabled or not local, cors_origins=cors or (),
                         settings=settings)  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    auth = "API keys required (Authorization: Bearer rk_...)" if keys else "no API keys (loopback only)"
    line = f"ragkit serve: {url}  (API docs: {url}/docs; {auth})"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    try:
        _announcing_server()(config, lambda: out.print(line, markup=False)).run()
    finally:
        base.close()


def check_port(host: str, port: int) -> None:
    """Fail in one line when host:port cannot be bound (uvicorn would log its own error and exit 3, the code
    `ragkit ingest` uses for a partial run)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or stop what uses it")


def _announcing_server() -> type:
    import uvicorn

    class Announcing(uvicorn.Server):
        """A uvicorn server that prints the URL once the port is bound, so a script that waits for the line
        can connect at once (before, the line came first and the first request could be refused)."""

        def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
            super().__init__(config)
            self.announce = announce

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                self.announce()

    return Announcing
