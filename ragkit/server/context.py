"""What every route shares: the server's settings and state, who is calling (API key -> principal, scope), the
per-key rate limit, and running blocking KB calls off the event loop (timed for the Server-Timing header)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ragkit.access import Principal
from ragkit.errors import AccessError
from ragkit.server.batching import SearchBatcher

if TYPE_CHECKING:
    from ragkit.api import KnowledgeBase
    from ragkit.server.jobs import Jobs
    from ragkit.server.lane import GenerationLane
    from ragkit.server.metrics import Metrics

T = TypeVar("T")
WRITE_SCOPES = ("write", "admin")


@dataclass(frozen=True)
class ServerSettings:
    """How one server runs. require_keys: every /v1 route needs `Authorization: Bearer rk_...` (always on an
    access-controlled KB; `ragkit serve` also turns it on when the KB has keys or binds beyond loopback)."""

    require_keys: bool = True
    cors_origins: tuple[str, ...] = ()
    generators: int = 1  # generations running at once (one model, shared)
    queue: int = 8  # generations waiting beyond those; more -> 429
    rate_per_minute: float = 600.0  # requests per key (or per anonymous local caller); 0 = no limit
    burst: int = 60  # requests a key may send at once before the rate applies
    max_body_bytes: int = 1 << 20  # JSON requests
    max_upload_bytes: int = 100 << 20  # POST /v1/documents (default: ingest.max_file_mb)
    heartbeat_s: float = 15.0  # SSE comment on an idle stream, for proxies
    auth_cache_s: float = 1.0  # a key that authenticated is trusted this long without a lookup (revocation lag)
    max_k: int = 100
    kb_threads: int = field(default_factory=lambda: max(2, min(4, os.cpu_count() or 2)))  # searches, SQL at once


@dataclass(frozen=True)
class Caller:
    """Who sent a request: their principal (None: the local user of a key-less loopback server), scope, name."""

    principal: Principal | None
    scope: str
    name: str
    key_prefix: str = ""

    @property
    def admin(self) -> bool:
        return self.scope == "admin"

    def check_write(self) -> None:
        if self.scope not in WRITE_SCOPES:
            raise HTTPException(403, "this API key may only read; ask an admin for a write-scope key")


class RateLimiter:
    """A token bucket per key: `burst` requests at once, refilled at `per_minute`."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0.0 when the request may go; else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate


class KeyCache:
    """API key -> Caller, through `kb.keys.authenticate` (a SHA-256 and a SQL lookup, in the thread pool); a key
    that authenticated is remembered for `ttl` seconds, so a revoked key is refused within that long."""

    def __init__(self, kb: KnowledgeBase, ttl: float) -> None:
        self.kb = kb
        self.ttl = ttl
        self._known: dict[str, tuple[Caller, float]] = {}

    async def caller(self, key: str | None) -> Caller:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest() if key else ""
        known = self._known.get(digest)
        if known is not None and time.monotonic() < known[1]:
            return known[0]
        try:
            principal, scope = await run_in_threadpool(self.kb.keys.authenticate, key)
        except AccessError as exc:
            self._known.pop(digest, None)
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        who = Caller(principal, scope, principal.name, (key or "")[:10])
        if self.ttl > 0:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[digest] = (who, time.monotonic() + self.ttl)
        return who


@dataclass
class ServerContext:
    kb: KnowledgeBase
    settings: ServerSettings
    lane: GenerationLane
    metrics: Metrics
    jobs: Jobs
    limiter: RateLimiter
    keys: KeyCache
    started: float = field(default_factory=time.time)
    ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: str | None = None
    batcher: SearchBatcher = field(default_factory=lambda: SearchBatcher(2))
    eval_jobs: dict[str, Any] = field(default_factory=dict)  # ragkit.server.evals
    _kb_limiter: anyio.CapacityLimiter | None = None

    def kb_lane(self) -> anyio.CapacityLimiter:
        if self._kb_limiter is None:  # made in the event loop that uses it
            self._kb_limiter = anyio.CapacityLimiter(self.settings.kb_threads)
        return self._kb_limiter


def context(request: Request) -> ServerContext:
    return request.app.state.ragkit


async def in_kb(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking KB call in the KB lane (at most `ServerSettings.kb_threads` at once, so torch's threads
    never crowd out the event loop); its own seconds add to the request's Server-Timing `kb` entry."""
    ctx = context(request)
    spent = [0.0]

    def timed() -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[0] = time.perf_counter() - t0

    try:
        return await anyio.to_thread.run_sync(timed, limiter=ctx.kb_lane())
    finally:
        state = request.scope.setdefault("state", {})
        state["kb_s"] = state.get("kb_s", 0.0) + spent[0]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def caller(request: Request) -> Caller:
    """The FastAPI dependency of every /v1 route: authenticate, then rate-limit. 401 / 429."""
    ctx = context(request)
    key = bearer(request)
    if key is None and not ctx.settings.require_keys:
        who = Caller(None, "admin", "local")
    else:
        who = await ctx.keys.caller(key)
    wait = ctx.limiter.take(who.key_prefix or who.name)
    if wait > 0:
        ctx.metrics.refused.labels("rate_limited").inc()
        raise HTTPException(
            429, "too many requests for this API key; slow down", headers={"Retry-After": str(max(1, round(wait)))}
        )
    request.state.caller = who
    return who


Who = Annotated[Caller, Depends(caller)]  # the parameter every /v1 route takes


def reader(ctx: ServerContext, who: Caller) -> KnowledgeBase:
    """The KB as this caller reads it (shares models and connections)."""
    return ctx.kb.as_principal(who.principal)
