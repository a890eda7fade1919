"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, ...) over the standard library's urllib.

POST {url}/chat/completions, streamed as server-sent events: `data: {json}` lines, then `data: [DONE]`. A stop
rule that fires closes the connection, which makes the server stop generating. The server's tokenizer is out
of reach, so prompt tokens are estimated at one per 3 characters (an over-count for English with any modern
tokenizer, so packing stays inside the window) unless the server reports usage.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from ragkit.errors import ConfigError, ModelError
from ragkit.types import Generation, Message

CHARS_PER_TOKEN = 3.0
_PER_MESSAGE = 4  # role markers and separators the chat template adds per message


class OpenAIGenerator:
    """A chat model behind an OpenAI-compatible `/v1/chat/completions` endpoint."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        context_window: int = 2048,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 120.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"generator url {url!r} must start with http:// or https://, e.g. http://127.0.0.1:8000/v1"
            )
        self.url = url.rstrip("/")
        self.model = model
        self.name = f"openai:{self.url} {model}"
        self.context_window = context_window
        self.timeout_s = timeout_s
        self._api_key = os.environ.get(api_key_env, "")

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Estimated tokens of the chat (the server's tokenizer is not available here)."""
        return sum(math.ceil(len(m["content"]) / CHARS_PER_TOKEN) + _PER_MESSAGE for m in messages) + 2

    def _request(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        req = urllib.request.Request(
            f"{self.url}/chat/completions", data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(req, timeout=self.timeout_s)  # noqa: S310 (the user's own endpoint)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace")
            msg = f"{self.url} answered HTTP {exc.code}: {detail.strip()}; check --model and the URL"
            raise ModelError(msg) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelError(f"cannot reach the generator at {self.url}: {reason}; is the server running?") from exc

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        """Complete the chat over HTTP, streamed; see Generator.generate."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if schema is not None:
            # the structured-output form vLLM, llama.cpp server and Ollama accept
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        t0 = time.perf_counter()
        text, finish, usage = "", "stop", {}
        with self._request(body) as resp:
            for event in _events(resp):
                usage = event.get("usage") or usage
                for choice in event.get("choices", [])[:1]:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        text += piece
                        if on_text is not None:
                            on_text(piece)
                    finish = {"length": "length"}.get(choice.get("finish_reason") or "", finish)
                if stop is not None and stop(text):
                    finish = "rule"
                    break  # leaving the with-block closes the connection; the server stops generating
        seconds = time.perf_counter() - t0
        prompt_tokens = int(usage.get("prompt_tokens") or self.count_prompt_tokens(messages))
        completion_tokens = int(usage.get("completion_tokens") or math.ceil(len(text) / CHARS_PER_TOKEN))
        return Generation(text.strip(), prompt_tokens, completion_tokens, seconds, finish)


def _events(resp: Any) -> Iterator[dict[str, Any]]:
    """JSON payloads of a server-sent-event stream, or the one JSON body of a server that does not stream."""
    content_type = resp.headers.get("Content-Type", "")
    if "text/event-stream" not in content_type:
        data = json.loads(resp.read().decode("utf-8"))
        for choice in data.get("choices", []):  # a whole completion: present it as one delta
            choice["delta"] = choice.get("message", {})
        yield data
        return
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ModelError(f"the generator server sent a malformed event: {payload[:200]!r}") from exc
