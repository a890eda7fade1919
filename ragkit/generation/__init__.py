"""Local GPT backends. The transformers/torch backend is the default."""

from __future__ import annotations

from ragkit.generation.transcript import plain_transcript
from ragkit.protocols import Generator, TrainableGenerator
from ragkit.types import Generation, Message

__all__ = ["Generation", "Generator", "Message", "TrainableGenerator", "build_generator", "plain_transcript"]


def build_generator(
    backend: str,
    model: str,
    *,
    url: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    context_window: int = 2048,
    threads: int | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout_s: float = 120.0,
    adapter: str | None = None,
) -> Generator:
    """The generator a config names: "transformers" (a local model, with an optional LoRA adapter folder),
    "openai" (an HTTP server at url) or "llamacpp" (a .gguf file run by llama.cpp, extra ragkit[llamacpp]).
    dtype ("auto", "float32", "bfloat16", "float16") applies to the transformers backend only: the
    others run the weights as their files hold them."""
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

    return TransformersGenerator(
        model, device=device, dtype=dtype, context_window=context_window, threads=threads, adapter=adapter
    )
