"""OpenAI-compatible routes: /v1/chat/completions (streamed or not), /v1/models, /v1/embeddings.

The last user message is the question, answered by the RAG pipeline of the caller's view of the KB (other
messages are not sent to the model: ragkit builds its own prompt from the sources). ragkit's checked answer
rides along as an extension field `ragkit` (citations with spans, abstained, flags, unsupported, relevance) on
the completion and on the stream's last chunk; `content` is the checked text (`[n]` markers verified).
The official `openai` client reads it as `completion.model_extra["ragkit"]`.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from ragkit.server.context import Who, context, in_kb
from ragkit.server.routes import AskRequest, EventStream, answer_of, bridge, prepare, stream_ticket
from ragkit.server.serialize import HEARTBEAT, JSON, plain, sse_data

router = APIRouter(prefix="/v1")
MODEL = "ragkit"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, ...: accepted, ragkit's settings decide
    model: str = MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream_options: StreamOptions | None = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: str | list[str] = Field(description="a text or a list of texts (token arrays are not accepted)")
    model: str = MODEL
    encoding_format: str = "float"


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") in ("text", "input_text", None))
    return content or ""


def _question(body: ChatRequest) -> AskRequest:
    users = [m for m in body.messages if m.role == "user" and _text(m.content).strip()]
    if not users:
        raise HTTPException(422, "no user message to answer: the last user message is the question")
    question = _text(users[-1].content)[:10_000]
    return AskRequest(question=question, max_tokens=body.max_completion_tokens or body.max_tokens)


def _extension(answer: Any) -> dict[str, Any]:
    data = plain(answer)
    keep = ("citations", "abstained", "unsupported", "flags", "relevance", "grounding", "confidence", "coverage")
    keep += ("timings", "generator")
    return {**{k: data[k] for k in keep}, "raw_text": data["raw_text"]}


def _usage(answer: Any) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}  # fmt: skip


@router.get("/models", summary="OpenAI: the one model this server answers with (the RAG pipeline)")
async def models(request: Request, who: Who) -> JSON:
    created = int(context(request).started)
    model = {"id": MODEL, "object": "model", "created": created, "owned_by": "ragkit"}
    return JSON({"object": "list", "data": [model]})


@router.post("/chat/completions", summary="OpenAI: the last user message answered from the KB, with citations")
async def chat_completions(body: ChatRequest, request: Request, who: Who) -> Any:
    prepared = await prepare(request, who, _question(body))
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not body.stream:
        answer = await answer_of(request, prepared)
        return JSON(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _usage(answer),
                "ragkit": _extension(answer),
            }
        )

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse_data(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [choice],
                **extra,
            }
        )

    t = stream_ticket(request, prepared)

    async def events() -> AsyncIterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        drafted = False
        async for kind, value in bridge(request, prepared, t):
            if kind == "ping":
                yield HEARTBEAT
            elif kind == "token":
                drafted = True
                yield chunk({"content": value})
            elif kind == "answer":
                if not drafted and value.text:  # nothing was generated (the gate abstained): the content is its text
                    yield chunk({"content": value.text})
                yield chunk({}, "stop", ragkit={**_extension(value), "text": value.text})
                if body.stream_options and body.stream_options.include_usage:
                    yield sse_data(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": body.model,
                            "choices": [],
                            "usage": _usage(value),
                        }
                    )
            elif kind == "error":
                yield sse_data({"error": {"message": value, "type": "ragkit_error"}})
        yield sse_data("[DONE]")

    return EventStream(events(), t, context(request))


@router.post("/embeddings", summary="OpenAI: the KB's embedder on your texts")
async def embeddings(body: EmbeddingRequest, request: Request, who: Who) -> JSON:
    ctx = context(request)
    texts = [body.input] if isinstance(body.input, str) else list(body.input)
    if not texts or len(texts) > 256 or any(not isinstance(t, str) for t in texts):
        raise HTTPException(422, "input must be a text or a list of 1 to 256 texts")
    embedder = await in_kb(request, lambda: ctx.kb.embedder)
    vectors = np.asarray(await in_kb(request, embedder.embed, texts), dtype=np.float32)
    counts = await in_kb(request, lambda: sum(embedder.counter().count_tokens(t) for t in texts))
    as_b64 = body.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": i,
         "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") if as_b64 else v.tolist()}
        for i, v in enumerate(vectors)
    ]  # fmt: skip
    return JSON(
        {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": counts, "total_tokens": counts},
        }
    )
