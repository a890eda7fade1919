"""Local GPT backends. The transformers/torch backend is the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@dataclass(frozen=True, slots=True)
class Generation:
    """One completion with its token counts and wall time in seconds."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish: str = "stop"  # "stop": end of turn; "length": token limit; "rule": the caller's stop rule fired


class Generator(Protocol):
    """A chat model that completes a list of messages."""

    name: str
    context_window: int  # tokens the prompt and the answer share

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the rendered chat prompt, generation prompt included."""
        ...

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        """Complete the chat; greedy when temperature is 0.

        Stops at the end of the assistant's turn, after max_new_tokens, or when stop(text so far) is True.
        on_text receives each new piece of text as it is decoded (streaming). schema: a JSON Schema the
        completion must satisfy; the backend constrains decoding to it.
        """
        ...


def build_generator(
    backend: str,
    model: str,
    *,
    url: str | None = None,
    device: str = "auto",
    context_window: int = 2048,
    threads: int | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout_s: float = 120.0,
    adapter: str | None = None,
) -> Generator:
    """The generator a config names: "transformers" (a local model, with an optional LoRA adapter folder),
    "openai" (an HTTP server at url) or "llamacpp" (a .gguf file run by llama.cpp, extra ragkit[llamacpp])."""
    if backend == "openai":
        from ragkit.errors import ConfigError
        from ragkit.generation.openai_http import OpenAIGenerator

        if adapter:
            raise ConfigError("generator.adapter needs the transformers backend; unset it to use an HTTP server")
        if not url:
            raise ConfigError("generator.backend = 'openai' needs generator.url, e.g. http://127.0.0.1:8000/v1")
        return OpenAIGenerator(url, model, context_window=context_window, api_key_env=api_key_env, timeout_s=timeout_s)
    if backend == "llamacpp":
        from ragkit.errors import ConfigError
        from ragkit.generation.llamacpp import LlamaCppGenerator

        if adapter:
            raise ConfigError("generator.adapter needs the transformers backend; unset it to use llama.cpp")
        return LlamaCppGenerator(model, device=device, context_window=context_window, threads=threads)
    from ragkit.generation.hf import TransformersGenerator

    return TransformersGenerator(model, device=device, context_window=context_window, threads=threads, adapter=adapter)
