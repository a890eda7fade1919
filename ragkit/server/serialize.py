"""JSON for the wire: answers, hits, documents, jobs; server-sent events. numpy scalars become plain numbers."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from starlette.responses import JSONResponse


def plain(value: Any) -> Any:
    """`value` with dataclasses, tuples, sets and numpy scalars/arrays turned into JSON types (NaN/inf -> None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return plain(value.tolist())
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))


class JSON(JSONResponse):
    """A JSONResponse that takes ragkit's records (dataclasses, numpy numbers) as they are."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def hit_json(hit: Any) -> dict[str, Any]:
    """A Hit as JSON: rank, score, dense, keyword and its chunk (id, doc_id, uri, ord, text, start, end, ...)."""
    return plain(hit)


def answer_json(answer: Any) -> dict[str, Any]:
    """The whole Answer (what `ragkit ask --json` prints): text, citations with spans, flags, timings, hits, ..."""
    return plain(answer)


def sse(event: str, data: Any) -> str:
    """One server-sent event: `event: NAME` and one `data:` line of JSON."""
    return f"event: {event}\ndata: {dumps(data)}\n\n"


def sse_data(data: Any) -> str:
    """An unnamed event (the OpenAI stream's `data: {...}` lines)."""
    return f"data: {data if isinstance(data, str) else dumps(data)}\n\n"


HEARTBEAT = ": ping\n\n"  # an SSE comment: keeps proxies from closing an idle stream; clients ignore it
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
