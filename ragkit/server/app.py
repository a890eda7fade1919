"""The app factory: settings, middleware (body limits, Server-Timing, metrics, CORS), error mapping, health.

Errors: every RagkitError is a 4xx JSON `{"error": message}` (UsageError 400, AccessError 403, a busy or empty
KB 409, others 400), except a full disk on the server: 507 with what to do; FastAPI's validation 422; a bug 500
with a fixed message (the traceback goes to the server
log, never to the client). The library's messages never name documents the reader cannot see, and the server's
own paths (the KB directory, its working and home folders) are replaced by neutral words (ragkit.server.redact).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from ragkit._version import __version__
from ragkit.errors import (
    AccessError,
    Cancelled,
    KnowledgeBaseError,
    ModelError,
    RagkitError,
    StorageError,
    UsageError,
)
from ragkit.fsutil import storage_problem
from ragkit.server import evals, jobs, openai_compat, routes, web
from ragkit.server.batching import SearchBatcher
from ragkit.server.context import KeyCache, RateLimiter, ServerContext, ServerSettings, Who, context
from ragkit.server.jobs import Jobs
from ragkit.server.lane import GenerationLane
from ragkit.server.metrics import Metrics
from ragkit.server.redact import redact
from ragkit.server.serialize import JSON

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase

log = logging.getLogger("ragkit.server")
UPLOAD_PATH = "/v1/documents"


def create_app(
    kb: KnowledgeBase,
    *,
    require_keys: bool,
    cors_origins: tuple[str, ...] | list[str] = (),
    settings: ServerSettings | None = None,
    warm: bool = True,
) -> FastAPI:
    """A FastAPI app serving `kb`. require_keys: every /v1 request needs an API key (`kb.keys`); it must be True
    for an access-controlled KB. settings: limits, lanes, rate (ServerSettings; its require_keys and
    cors_origins are replaced by the arguments). warm: load the embedder, index and generator in the background
    at startup (/readyz says when the first two are in)."""
    base = settings or ServerSettings(max_upload_bytes=int(kb.config.ingest.max_file_mb * (1 << 20)))
    settings = ServerSettings(**{**base.__dict__, "require_keys": require_keys, "cors_origins": tuple(cors_origins)})
    if kb.acl.enabled and not settings.require_keys:
        raise UsageError(
            f"{kb.root} is access-controlled: every request must carry an API key (create one with: ragkit keys "
            f"create --kb {kb.root} --name NAME --groups G)"
        )
    lane = GenerationLane(settings.generators, settings.queue)
    metrics = Metrics(lambda: lane.waiting, lambda: lane.active)
    lane.on_cancelled = metrics.cancelled.inc
    limiter = RateLimiter(settings.rate_per_minute, settings.burst)
    ctx = ServerContext(kb, settings, lane, metrics, Jobs(kb, metrics), limiter, KeyCache(kb, settings.auth_cache_s))
    ctx.batcher = SearchBatcher(settings.kb_threads)  # as many batches in flight as the KB lane runs calls

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=_warm, args=(ctx,), name="ragkit-warmup", daemon=True).start()
        else:
            ctx.ready.set()
        yield
        for job in ctx.eval_jobs.values():  # a running eval stops at its next question
            job.cancel.set()
        ctx.jobs.close()
        lane.close()

    app = FastAPI(
        title="ragkit",
        version=__version__,
        summary="Cited answers from a knowledge base: search, ask (streamed), documents, OpenAI-compatible routes",
        lifespan=lifespan,
    )
    app.state.ragkit = ctx
    _errors(app)
    app.include_router(routes.router)
    app.include_router(jobs.router)
    app.include_router(openai_compat.router)
    app.include_router(evals.router)
    web.mount(app)  # the web page at / (ragkit/server/web/)

    @app.get("/healthz", summary="Liveness: the process answers (touches nothing)")
    async def healthz() -> JSON:
        return JSON({"ok": True})

    @app.get("/readyz", summary="Readiness: 200 once the embedder and the index are loaded, else 503")
    async def readyz(request: Request) -> JSON:
        c = context(request)
        body = {"ready": c.ready.is_set(), "error": c.warmup_error}
        return JSON(body, status_code=200 if c.ready.is_set() else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_route(request: Request, who: Who) -> Response:
        return Response(context(request).metrics.render(), media_type=metrics.content_type)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Server-Timing", "Retry-After"],
        )
    app.add_middleware(Instrument, ctx=ctx)  # outermost: it times and counts everything, refusals included
    return app


def _warm(ctx: ServerContext) -> None:
    try:
        ctx.kb.embedder  # noqa: B018 - loading is the point
        ctx.kb.index  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - readiness reports it; requests will raise it properly
        failed = redact(str(exc), ctx.kb.root) if isinstance(exc, RagkitError) else None
        ctx.warmup_error = failed or "loading failed; see the server log"
        log.exception("warm-up failed")
        return
    ctx.ready.set()
    with contextlib.suppress(Exception):  # a KB used for search only may have no generator installed
        ctx.kb.generator  # noqa: B018


# -- errors -------------------------------------------------------------------------------------------------------


def status_of(exc: RagkitError) -> int:
    if isinstance(exc, StorageError):
        return 507  # the server's disk is full: not the client's doing, and not a bug either
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, AccessError):
        return 403
    if isinstance(exc, KnowledgeBaseError):
        return 409  # locked by an ingest, or holds no chunks yet
    if isinstance(exc, ModelError):
        return 424  # the configured model cannot be loaded or reached
    if isinstance(exc, Cancelled):
        return 499
    return 400


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RagkitError)
    async def ragkit_error(request: Request, exc: RagkitError) -> JSON:
        message = redact(str(exc), context(request).kb.root)
        if message != str(exc):  # the operator still sees which paths it was about
            log.info("%s %s: %s", request.method, request.url.path, exc)
        return JSON({"error": message}, status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        return JSON({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSON:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        text = "; ".join(f"{'.'.join(p['loc'][1:]) or 'body'}: {p['msg']}" for p in problems[:5])
        return JSON({"error": f"invalid request: {text}", "detail": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSON:
        message = storage_problem(exc)  # an upload saved to a full or read-only disk, say
        if message is not None:
            log.error("storage on %s %s: %s", request.method, request.url.path, exc)
            return JSON({"error": message}, status_code=507)
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSON({"error": "internal error; the server log has the details"}, status_code=500)


# -- middleware -----------------------------------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    """413; an HTTPException, so FastAPI passes it on when it is raised while a route's body is being read."""

    def __init__(self, limit: int, upload: bool) -> None:
        what = "upload" if upload else "request body"
        super().__init__(413, f"the {what} is over the server's limit of {limit / (1 << 20):.1f} MB")


class Instrument:
    """Pure ASGI (streams pass through untouched): refuses bodies over the limit with 413 (Content-Length up front,
    or while the body streams in), adds `Server-Timing: kb;dur=MS, app;dur=MS` (time inside KB calls / in the
    app) and counts requests and latency per route template."""

    def __init__(self, app: Any, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        settings, metrics = self.ctx.settings, self.ctx.metrics
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") == UPLOAD_PATH
        limit = settings.max_upload_bytes if upload else settings.max_body_bytes
        status = {"code": 500, "started": False}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                kb_ms = scope.get("state", {}).get("kb_s", 0.0) * 1000
                app_ms = (time.perf_counter() - t0) * 1000
                timing = f"kb;dur={kb_ms:.2f}, app;dur={app_ms:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", timing)]}
                route = getattr(scope.get("route"), "path", "unmatched")
                metrics.latency.labels(route).observe(app_ms / 1000)
            await send(message)

        received = 0

        async def receiving() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    metrics.refused.labels("body_too_large").inc()
                    raise BodyTooLarge(limit, upload)
            return message

        try:
            declared = int(dict(scope["headers"]).get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        try:
            if declared > limit:
                metrics.refused.labels("body_too_large").inc()
                raise BodyTooLarge(limit, upload)
            await self.app(scope, receiving, sending)
        except BodyTooLarge as exc:  # raised before the app ran, or past its own exception handlers
            if not status["started"]:
                await JSON({"error": exc.detail}, status_code=413)(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
