"""The native API: search, ask (JSON or server-sent events), documents (list, get, text, delete).

Every route reads through `kb.as_principal(caller's principal)`: what a caller may not read does not exist for
it (404, never 403, for another tenant's document id).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from ragkit.answering import AnswerOptions, measured_relevance, relevance_gate
from ragkit.errors import Cancelled, RagkitError
from ragkit.server.batching import options_key
from ragkit.server.context import Caller, ServerContext, Who, context, in_kb, reader
from ragkit.server.lane import LaneFull, Ticket, cancellable
from ragkit.server.redact import redact
from ragkit.server.serialize import HEARTBEAT, JSON, SSE_HEADERS, answer_json, dumps, hit_json, plain, sse
from ragkit.types import Answer, Hit

router = APIRouter(prefix="/v1")

Mode = Literal["hybrid", "dense", "keyword"]
Filters = list[str] | dict[str, Any] | None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(default=None, ge=1, le=1000)
    filters: Filters = Field(default=None, description="'FIELD OP VALUE' strings or {field: value}, as --filter")
    mode: Mode | None = None
    mmr: float | None = Field(default=None, ge=0.0, le=1.0, description="MMR lambda for diverse hits")
    rerank: bool = True


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=10_000)
    k: int | None = Field(default=None, ge=1, le=100)
    filters: Filters = None
    mode: Mode | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    strict: bool | None = None
    min_relevance: float | None = Field(default=None, ge=0.0, le=1.0)


def _k(ctx: ServerContext, k: int | None) -> int | None:
    if k is not None and k > ctx.settings.max_k:
        raise HTTPException(422, f"k must be at most {ctx.settings.max_k}")
    return k


@router.post("/search", summary="Ranked chunks for a query (no generation)")
async def search(body: SearchRequest, request: Request, who: Who) -> Response:
    ctx = context(request)
    kb = reader(ctx, who)
    k = _k(ctx, body.k)
    if not body.query.strip():
        raise HTTPException(400, "the query is empty; ask something")
    options = {"filters": body.filters, "mode": body.mode, "mmr": body.mmr, "rerank": body.rerank}
    key = options_key(who.principal, k=k, **options)
    mode = body.mode or kb.config.retrieval.mode

    def run(queries: list[str]) -> list[bytes]:  # in the KB lane: concurrent searches share one call
        found = kb.search_batch(queries, k, **options)
        return [
            dumps({"query": q, "mode": mode, "k": k, "hits": hits}).encode()
            for q, hits in zip(queries, found, strict=True)
        ]

    body_bytes, seconds = await ctx.batcher.search(key, body.query, run, ctx.kb_lane())
    state = request.scope.setdefault("state", {})
    state["kb_s"] = state.get("kb_s", 0.0) + seconds
    return Response(body_bytes, media_type="application/json")


@dataclass(frozen=True)
class Prepared:
    """An ask after the KB lane: the caller's view of the KB, the hits, the options, and `gated`, the abstention
    when the relevance gate says the model is not to be asked (then no generation slot is taken)."""

    kb: Any
    question: str
    hits: list[Hit]
    options: AnswerOptions
    relevance: float | None
    retrieve_s: float
    gated: Answer | None

    def answerer(self, on_text: Callable[[str], None]) -> Callable[[], Answer]:
        """`kb.answer` as a call for the lane's thread (the gate passed; the relevance measured for it is passed
        on, not measured again). The models load in this thread if not yet, the fallback only when asked."""

        def run() -> Answer:
            return self.kb.answer(
                self.question,
                self.hits,
                self.options,
                on_text=on_text,
                retrieve_s=self.retrieve_s,
                relevance=self.relevance,
            )

        return run


async def prepare(request: Request, who: Caller, body: AskRequest) -> Prepared:
    """Retrieval and the relevance gate in the KB lane, so that a question that abstains without generating is
    answered even while every generation slot is taken (its relevance is measured once, here)."""
    ctx = context(request)
    kb = reader(ctx, who)
    k = _k(ctx, body.k)

    def run() -> Prepared:
        t0 = time.perf_counter()
        hits = kb.search(body.question, k, filters=body.filters, mode=body.mode)
        retrieve_s = time.perf_counter() - t0
        options = kb.answer_options(
            max_new_tokens=body.max_tokens, strict=body.strict, min_relevance=body.min_relevance
        )
        relevance = measured_relevance(body.question, hits, lambda: kb.embedder)
        gated = relevance_gate(body.question, hits, relevance, options, retrieve_s=retrieve_s)
        return Prepared(kb, body.question, hits, options, relevance, retrieve_s, gated)

    prepared = await in_kb(request, run)
    if prepared.gated is not None:
        ctx.metrics.answered(prepared.gated)
    return prepared


def ticket(ctx: ServerContext) -> Ticket:
    try:
        return ctx.lane.ticket()
    except LaneFull as exc:
        ctx.metrics.refused.labels("queue_full").inc()
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


def stream_ticket(request: Request, prepared: Prepared) -> Ticket | None:
    """A place in the lane for a stream, taken before the response starts (429); None when the gate answered."""
    return None if prepared.gated is not None else ticket(context(request))


async def watch_disconnect(request: Request, ticket: Ticket, every_s: float = 0.1) -> None:
    """Set the ticket's cancel event as soon as the client is gone (a non-streaming request)."""
    while not ticket.cancel.is_set():
        if await request.is_disconnected():
            ticket.cancel.set()
            return
        await asyncio.sleep(every_s)


async def answer_of(request: Request, prepared: Prepared) -> Answer:
    """The gate's abstention, or a generation in the lane (429 when it is full) while watching for the client
    to leave; the ticket is closed after."""
    if prepared.gated is not None:
        return prepared.gated
    ctx = context(request)
    t = ticket(ctx)
    watcher = asyncio.create_task(watch_disconnect(request, t))
    try:
        answer = await t.run(prepared.answerer(cancellable(t.cancel)))
    finally:
        watcher.cancel()
        t.close()
    ctx.metrics.answered(answer)
    return answer


@router.post("/ask", summary="A checked answer with citations (the whole Answer, as ragkit ask --json)")
async def ask(body: AskRequest, request: Request, who: Who) -> JSON:
    return JSON(answer_json(await answer_of(request, await prepare(request, who, body))))


class EventStream(StreamingResponse):
    """A server-sent event stream whose ticket (if any) is closed however the response ends (even before it
    starts)."""

    def __init__(self, body: AsyncIterator[str], t: Ticket | None, ctx: ServerContext) -> None:
        super().__init__(body, media_type="text/event-stream", headers=SSE_HEADERS)
        self.ticket, self.ctx = t, ctx

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.ctx.metrics.streams.inc()
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.ticket is not None:
                self.ticket.close()
            self.ctx.metrics.streams.dec()


async def bridge(request: Request, prepared: Prepared, t: Ticket | None) -> AsyncIterator[tuple[str, Any]]:
    """Run a generation in the lane and yield ("token", text) as the thread writes it, then ("answer", Answer);
    ("ping", None) when nothing came for heartbeat_s. The thread puts into an asyncio queue through the loop.
    Without a ticket (the gate answered) it yields ("answer", the abstention) at once."""
    if t is None:
        yield "answer", prepared.gated
        return
    ctx = context(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_text(piece: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("token", piece))

    async def run() -> None:
        try:
            answer = await t.run(prepared.answerer(cancellable(t.cancel, on_text)))
            ctx.metrics.answered(answer)
            queue.put_nowait(("answer", answer))
        except Cancelled:
            queue.put_nowait(("cancelled", None))
        except RagkitError as exc:
            queue.put_nowait(("error", redact(str(exc), ctx.kb.root)))
        except Exception:  # noqa: BLE001 - a bug: the client gets a line, the server log the traceback
            import logging

            logging.getLogger("ragkit.server").exception("generation failed")
            queue.put_nowait(("error", "internal error while answering; see the server log"))

    task = asyncio.create_task(run())
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout=ctx.settings.heartbeat_s)
            except TimeoutError:
                yield "ping", None
                continue
            yield kind, value
            if kind in ("answer", "error", "cancelled"):
                return
    finally:
        t.cancel.set()  # the client left (or we are done): the thread stops at its next piece of text
        if not task.done():
            task.cancel()


@router.post(
    "/ask/stream",
    summary="Ask, streamed as server-sent events: sources, token..., answer (the checked Answer), done",
    response_class=StreamingResponse,
)
async def ask_stream(body: AskRequest, request: Request, who: Who) -> StreamingResponse:
    prepared = await prepare(request, who, body)
    t = stream_ticket(request, prepared)
    hits = [hit_json(h) for h in prepared.hits]

    async def events() -> AsyncIterator[str]:
        yield sse("sources", {"question": body.question, "retrieve_s": prepared.retrieve_s, "hits": hits})
        async for kind, value in bridge(request, prepared, t):
            if kind == "ping":
                yield HEARTBEAT
            elif kind == "token":
                yield sse("token", {"text": value})
            elif kind == "answer":
                yield sse("answer", answer_json(value))
                yield sse("done", {})
            elif kind == "error":
                yield sse("error", {"error": value})

    return EventStream(events(), t, context(request))


# -- documents ------------------------------------------------------------------------------------------------

NOT_FOUND = "no such document"  # the same words whether it does not exist or the caller may not read it
MAX_ID = 2**63 - 1  # SQL integers are 64-bit
DocId = Annotated[int, Path(ge=1, le=MAX_ID, description="a document id (GET /v1/documents)")]


@router.get("/documents", summary="The documents the caller may read")
async def list_documents(
    request: Request,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> JSON:
    docs = reader(context(request), who).documents
    found = await in_kb(request, docs.list, limit, offset)
    total = await in_kb(request, docs.count)
    return JSON({"documents": plain(found), "total": total, "limit": limit, "offset": offset})


async def _visible(request: Request, who: Caller, doc_id: int) -> Any:
    found = await in_kb(request, reader(context(request), who).documents.get, doc_id)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


@router.get("/documents/{doc_id}", summary="One document's record (uri, status, chunks, metadata)")
async def get_document(doc_id: DocId, request: Request, who: Who) -> JSON:
    return JSON(plain(await _visible(request, who, doc_id)))


@router.get("/documents/{doc_id}/text", summary="A document's extracted text (citation start:end index it)")
async def document_text(
    doc_id: DocId,
    request: Request,
    who: Who,
    start: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    end: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> JSON:
    kb = reader(context(request), who)
    text = await in_kb(request, kb.documents.text, doc_id)
    if text is None:
        raise HTTPException(404, NOT_FOUND)
    info = await in_kb(request, kb.documents.get, doc_id)
    stop = len(text) if end is None else min(end, len(text))
    return JSON(
        {
            "id": doc_id,
            "uri": info.uri if info else None,
            "start": start,
            "end": stop,
            "length": len(text),
            "text": text[start:stop],
        }
    )


def _exact(uri: str) -> str:
    """A delete target that matches this uri only (glob characters taken literally)."""
    return re.sub(r"([\[\]*?])", r"[\1]", uri)


@router.delete("/documents/{doc_id}", summary="Delete a document the caller may read (write scope)")
async def delete_document(doc_id: DocId, request: Request, who: Who) -> JSON:
    who.check_write()
    ctx = context(request)
    info = await _visible(request, who, doc_id)
    target = _exact(info.uri)
    planned = await in_kb(request, ctx.kb.delete_documents, [target], dry_run=True)
    if tuple(planned.deleted) != (info.uri,):  # another document's uri differs only in case: delete it by hand
        raise HTTPException(409, "this document's uri is ambiguous here; delete it with ragkit delete on the server")
    report = await in_kb(request, ctx.kb.delete_documents, [target])
    return JSON({"deleted": info.uri, "id": doc_id, "chunks": report.chunks})
